"""What a person is shown of a candidate's words: control characters made visible, never obeyed.

A candidate controls text that the host shows on a terminal or a page: the last line it printed
on stderr (a failing candidate's ``reason``), its log tail, file names in its tree and outputs,
a hypothesis, metric names. Printed raw, an escape sequence in that text is an instruction to
the terminal: write the clipboard (OSC 52), set the window title, move the cursor and draw a fake
``scored 0.0000`` line over a real one, or (bidi controls, the "Trojan Source" trick) show code
in an order other than the one it runs in. ``shown`` is the one function every surface passes
such text through: each control character comes out as an escape a person can read
(``\\x1b``, ``\\r``, ``\\u202e``) and nothing else changes.

What counts (``is_hidden``, the one definition; the page's markers in ``ui.text`` use it too):
every character that renders as nothing, as something else, or reorders what follows. That is
the control characters (C0, DEL, C1: a single-byte CSI is ``\\x9b``), the format characters (bidi
controls, zero-width joiners and spaces, the word joiner, the BOM), the line and paragraph
separators, surrogates (what ``surrogateescape`` makes of undecodable bytes), private-use and
unassigned code points, and the spaces other than the plain one (a no-break space looks like
one). A newline and a tab are kept where the text is multi-line (a log tail), escaped where it
is one line. The page may show the same characters as named markers (``ui.text.reveal``); a
terminal, a record and a plain template value get the escape.
"""

from __future__ import annotations

import unicodedata
from typing import Any

__all__ = ["has_control", "is_hidden", "shown", "shown_value"]

_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_SPACES = frozenset({"\u00a0", "\u1680", "\u202f", "\u205f", "\u3000"} | {chr(c) for c in range(0x2000, 0x200B)})
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def is_hidden(ch: str) -> bool:
    """Does ``ch`` render as nothing, as something else, or reorder what follows? (A newline
    and a tab do not: whether they are escaped is ``shown``'s ``multiline``.)"""
    if ch in "\n\t":
        return False
    return unicodedata.category(ch) in _CATEGORIES or ch in _SPACES


def _escape(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def shown(text: Any, multiline: bool = False) -> str:
    """``text`` as it may be shown to a person: every hidden character escaped (newlines and
    tabs kept when ``multiline``). Anything that is not a string is turned into one first."""
    if text is None:
        return ""
    if not isinstance(text, str):
        text = str(text)
    if text.isprintable():  # the common case: nothing to escape (every hidden character is not printable)
        return text
    kept = "\n\t" if multiline else ""
    return "".join(_escape(ch) if ch not in kept and (ch in "\n\t" or is_hidden(ch)) else ch for ch in text)


def shown_value(value: Any) -> Any:
    """``value`` with every string inside it (dict keys and values, list items) passed through
    ``shown``: an event or a record, made safe to show whole."""
    if isinstance(value, str):
        return shown(value)
    if isinstance(value, dict):
        return {shown(k) if isinstance(k, str) else k: shown_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(shown_value(v) for v in value)
    return value


def has_control(text: str) -> bool:
    """Whether ``text`` holds a character ``shown`` would escape (a newline and a tab included)."""
    return not text.isprintable() and any(ch in "\n\t" or is_hidden(ch) for ch in text)
