"""What the page shows a person of text a candidate controls (diffs, hypotheses, logs, file
names) passes through here, so that nothing in it can read differently from what it is.

Bidirectional controls (the "Trojan Source" attack: ``if access != "user"`` that reads the other
way round), zero-width and other invisible format characters, control characters, private-use
characters and unusual spaces are each replaced by a visible marker naming the code point
(``<mark class="invisible" title="RIGHT-TO-LEFT OVERRIDE">U+202E</mark>``). Markers are put in
after escaping (and, for a diff, after pygments coloured it), through sentinels made of
private-use characters, which the text itself can no longer hold: they were all marked first.
"""

from __future__ import annotations

import re
import unicodedata

from markupsafe import Markup, escape

__all__ = ["diff_html", "is_hidden", "reveal", "reveal_count"]

_OPEN, _CLOSE = "\ue000", "\ue001"
_SENTINEL = re.compile(f"{_OPEN}([0-9A-F]{{4,6}}){_CLOSE}")
_SPACES = {"\u00a0", "\u2007", "\u202f", "\u3000", "\u205f", "\u1680"} | {chr(c) for c in range(0x2000, 0x200B)}


def is_hidden(ch: str) -> bool:
    """Does ``ch`` render as nothing, as something else, or reorder what follows?"""
    if ch in "\n\t":
        return False
    category = unicodedata.category(ch)
    return category in ("Cf", "Cc", "Co", "Cs", "Cn", "Zl", "Zp") or ch in _SPACES


def _mark(text: str) -> str:
    return "".join(f"{_OPEN}{ord(ch):04X}{_CLOSE}" if is_hidden(ch) else ch for ch in text)


def _markers(html: str) -> str:
    def one(match: re.Match) -> str:
        code = int(match.group(1), 16)
        name = unicodedata.name(chr(code), "unnamed character") if code <= 0x10FFFF else "unnamed character"
        return f'<mark class="invisible" title="{escape(name)}">U+{match.group(1)}</mark>'

    return _SENTINEL.sub(one, html)


def reveal(text: object) -> Markup:
    """``text`` escaped, with every hidden character shown as a marker (a Jinja filter)."""
    return Markup(_markers(str(escape(_mark("" if text is None else str(text))))))


def reveal_count(text: str) -> int:
    """How many hidden characters ``text`` holds (a diff says so in its header)."""
    return sum(1 for ch in text if is_hidden(ch))


def diff_html(text: str) -> Markup:
    """A unified diff, coloured by pygments, hidden characters marked."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import DiffLexer

    return Markup(_markers(highlight(_mark(text), DiffLexer(), HtmlFormatter(cssclass="highlight"))))
