"""What a person is shown of a candidate's words: control characters made visible, never obeyed.

A candidate controls text that the host shows on a terminal or a page: the last line it printed
on stderr (a failing candidate's ``reason``), its log tail, file names in its tree and outputs,
a hypothesis, metric names. Printed raw, an escape sequence in that text is an instruction to
the terminal: write the clipboard (OSC 52), set the window title, move the cursor and draw a fake
``scored 0.0000`` line over a real one, or (bidi controls, the "Trojan Source" trick) show code
in an order other than the one it runs in. ``shown`` is the one function every surface passes
such text through: each control character comes out as an escape a person can read
(``\\x1b``, ``\\r``, ``\\u202e``) and nothing else changes.

What counts as a control character: C0 (U+0000-U+001F) and DEL, C1 (U+0080-U+009F: a single-byte
CSI is ``\\x9b``), the bidirectional controls, the invisible format characters that can hide or
reorder text (zero-width joiners and spaces, the word joiner, the BOM), the line and paragraph
separators, and lone surrogates (what ``surrogateescape`` makes of undecodable bytes). A newline
and a tab are kept where the text is multi-line (a log tail), escaped where it is one line.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["has_control", "shown", "shown_value"]

_OTHERS = (
    "\u007f-\u009f"  # DEL, C1
    "\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\u206a-\u206f\ufeff"  # bidi, zero-width, separators
    "\ufff9-\ufffb"  # interlinear annotation controls
    "\ud800-\udfff"  # lone surrogates
)
_ONE_LINE = re.compile(f"[\u0000-\u001f{_OTHERS}]")
_MULTI_LINE = re.compile(f"[\u0000-\u0008\u000b-\u001f{_OTHERS}]")  # newline and tab kept
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match) -> str:
    char = match.group(0)
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def shown(text: Any, multiline: bool = False) -> str:
    """``text`` as it may be shown to a person: every control character escaped (newlines and
    tabs kept when ``multiline``). Anything that is not a string is turned into one first."""
    if text is None:
        return ""
    if not isinstance(text, str):
        text = str(text)
    return (_MULTI_LINE if multiline else _ONE_LINE).sub(_escape, text)


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
    return _ONE_LINE.search(text) is not None
