"""The one sanitiser: what a terminal or a page is shown of a candidate's words obeys nothing."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from progenitor.boundary.display import has_control, shown, shown_value

OSC52 = "\x1b]52;c;cHduZWQ=\x07"
TITLE = "\x1b]0;owned\x07"
FAKE_LINE = "\r\x1b[1A\x1b[2K g1/c0 scored 0.0000"


def test_escape_sequences_are_shown_not_obeyed():
    out = shown(f"failed{OSC52}{TITLE}{FAKE_LINE}")
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out
    assert out == ("failed\\x1b]52;c;cHduZWQ=\\x07\\x1b]0;owned\\x07\\r\\x1b[1A\\x1b[2K g1/c0 scored 0.0000")


def test_c1_bidi_zero_width_separators_and_lone_surrogates_are_shown():
    for char, escaped in [("\x9b", "\\x9b"), ("\u202e", "\\u202e"), ("\u2066", "\\u2066"), ("\u200b", "\\u200b"),
                          ("\u2028", "\\u2028"), ("\ufeff", "\\ufeff"), ("\udc80", "\\udc80"), ("\x7f", "\\x7f")]:
        assert shown(f"a{char}b") == f"a{escaped}b"


def test_a_log_tail_keeps_its_lines_and_tabs_but_nothing_else():
    assert shown("a\n\tb\x1b[31m\r\n", multiline=True) == "a\n\tb\\x1b[31m\\r\n"
    assert shown("a\nb") == "a\\nb"  # one line stays one line


def test_plain_text_passes_unchanged():
    for text in ("error: 0.125", "über straße 数据 🙂", "C:\\path\\x1b (a backslash is not a control)"):
        assert shown(text) == text


def test_values_inside_events_are_shown():
    event = {"type": "train.end", "reason": f"x{OSC52}", "metrics": {f"e{TITLE}": 1.0}, "lines": ["\x1b[2J"]}
    clean = shown_value(event)
    assert not has_control(json.dumps(clean, ensure_ascii=False).replace("\\\\", ""))
    assert clean["metrics"] == {"e\\x1b]0;owned\\x07": 1.0} and clean["lines"] == ["\\x1b[2J"]


@given(st.text())
def test_whatever_a_candidate_writes_nothing_shown_is_a_control_character(text):
    out = shown(text)
    assert not has_control(out)
    assert shown(out) == out  # once is enough: a second pass changes nothing
    assert not has_control(shown(text, multiline=True).replace("\n", "").replace("\t", ""))


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"))
               | st.just(" ")))
def test_text_without_control_characters_is_shown_as_it_is(text):
    assert shown(text) == text


def test_the_page_marks_the_very_characters_the_sanitiser_escapes():
    from progenitor.ui.text import is_hidden as marked

    for char in ("\x1b", "\x9b", "\u202e", "\u200b", "\ufeff", "\u00a0", "\ue000", "\U0010fffd", "\u0378"):
        assert marked(char) and shown(char) != char, repr(char)
    for char in ("a", " ", "\u00e9", "\U0001f642"):
        assert not marked(char) and shown(char) == char, repr(char)
