"""``python -m progenitor.cli``: the CLI before the ``progenitor`` script is on PATH."""

from progenitor.cli.commands import main

main()
