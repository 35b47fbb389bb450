"""What ``progenitor.yaml`` declares: the spec (``spec``) and how its problems are told, every
one with its fix (``validation``), the search space against the config file (``search_space``,
``config_files``) and its values as command-line flags (``flags``), the commands' placeholders
(``placeholders``), the dependency manifests (``manifests``), the constitution every generation
inherits (``constitution``), and ``progenitor init``'s templates (``templates/``)."""
