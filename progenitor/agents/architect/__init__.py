"""Architects: the offline search (Optuna, ``search``), the language model (``llm``), and the two
together (``mixed``); how an architect reads the lineage (``journal``)."""
