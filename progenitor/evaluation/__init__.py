"""How a candidate is scored, on the trusted side of the sealed evaluation: data preparation and
the trusted scorer (``scorer``), what a candidate may see of the data and what stays hidden
(``visible``), compared by contents, not names (``leaks``), the checks once it is scored:
self-report gap, guards, capability jumps (``after_scoring``), and how far to trust a run's
final numbers (``honesty``)."""
