"""A run on disk: its directory and events log (``rundir``), what it spent (``ledger``), whether
its process is still there (``processes``)."""
