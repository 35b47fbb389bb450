"""What ``progenitor.yaml`` declares: the spec (``spec``), the search space against the config
file (``search_space``, ``config_files``), the commands' placeholders (``placeholders``), the
dependency manifests (``manifests``), the constitution every generation inherits
(``constitution``), and ``progenitor init``'s templates (``scaffold``)."""
