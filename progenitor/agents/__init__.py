"""The agents of the loop, pure: the seams and their models (``base``), agents by name
(``registry``), architects (``architect/``), coders (``coder/``), the safety reviewer
(``safety/``), their prompts (``prompts/``) and what an LLM agent may read of a tree
(``repo_view``). The nodes of ``progenitor.workflows`` do every side effect."""
