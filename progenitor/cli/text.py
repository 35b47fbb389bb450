"""What the CLI prints of words it did not write (a candidate's reason, log tail, hypothesis,
file and metric names; a task's names; an error's message): control characters shown as
escapes (``boundary.display.shown``, the one sanitiser) and, for rich, its markup escaped."""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from progenitor.boundary.display import shown

__all__ = ["block", "shown", "text"]


def text(value: Any, multiline: bool = False) -> str:
    """``value`` as rich may print it: control characters escaped, then rich's markup."""
    return escape(shown(value, multiline=multiline))


def block(value: Any, indent: str = "    ") -> str:
    """``value`` as ``text`` makes it, its own line breaks kept (a schema error lists one field a
    line) and each continuation line indented, so that no line of it can pass for a line of ours."""
    return text(value, multiline=True).replace("\t", " ").replace("\n", "\n" + indent)
