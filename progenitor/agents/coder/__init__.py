"""Coders: the offline coder that writes proposed values into the config file (``offline``), and
the language model that writes code as search/replace edits (``llm``, ``edit_blocks``)."""
