"""The ``progenitor`` command: a thin shell over the Python API.

``commands`` parses and calls ``progenitor.api``; ``errors`` turns a ``ProgenitorError``
into one line and its exit code; ``progress`` shows a run while it works and its summary;
``sandbox`` holds the ``progenitor sandbox ...`` group. Nothing heavy is imported here, so
``progenitor --help`` stays fast.
"""

from progenitor.cli.commands import cli, main

__all__ = ["cli", "main"]
