"""One line of JSON a candidate wrote (a metric line on stdout, a point of a progress curve),
parsed with its size and its nesting bounded.

``json.loads`` recurses once per level of nesting: one line of ten thousand ``[`` raised a
``RecursionError`` in the driver's metric parser, in early stopping and in the pruning watcher,
and a ``RecursionError`` is not the ``ValueError`` those parsers expected. Here a line longer
than ``MAX_LINE_BYTES`` or nested deeper than ``MAX_DEPTH`` is not parsed at all (the nesting is
counted by one pass over the characters, strings skipped, before ``json.loads`` sees it), and
whatever else goes wrong is the line's fault: the answer is None, never an exception.
"""

from __future__ import annotations

import json
from typing import Any, Optional

__all__ = ["MAX_DEPTH", "MAX_LINE_BYTES", "parse_line", "too_deep"]

MAX_LINE_BYTES = 64 << 10
"""A longer line is no metric and no progress point."""
MAX_DEPTH = 16
"""Arrays and objects nested deeper than this are refused (a metric line is one flat object)."""


def too_deep(text: str, max_depth: int = MAX_DEPTH) -> bool:
    """Whether ``[`` and ``{`` nest more than ``max_depth`` deep in ``text``, outside strings."""
    if text.count("[") + text.count("{") <= max_depth:
        return False  # it cannot nest deeper than it has openers
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > max_depth:
                return True
        elif char in "]}":
            depth -= 1
    return False


def parse_line(line: str, max_bytes: int = MAX_LINE_BYTES, max_depth: int = MAX_DEPTH) -> Optional[Any]:
    """The JSON value on ``line``, or None when it is not one, or is too long or too deep."""
    if len(line) > max_bytes or too_deep(line, max_depth):
        return None
    try:
        return json.loads(line)
    except (ValueError, RecursionError, MemoryError):
        return None
