"""Metric lines and progress points: whatever a candidate prints or appends, the parsers answer
(bounded in length, nesting and count) and never raise."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from progenitor.boundary.jsonl import MAX_DEPTH, MAX_LINE_BYTES, parse_line, too_deep
from progenitor.boundary.metrics import MAX_METRICS, parse_metrics
from progenitor.compute.pruning import MAX_POINTS, parse_progress

DEEP = "[" * 100_000 + "]" * 100_000


def test_a_line_nested_a_hundred_thousand_deep_is_no_metric_and_no_error():
    assert parse_metrics(f"{DEEP}\n{{\"a\": {DEEP}}}\nerror: 0.5\n") == {"error": 0.5}
    assert parse_line('{"a": ' + DEEP[:2 * (MAX_DEPTH + 1)] + "}") is None
    assert parse_line('{"a": "' + "[" * 1000 + '"}') == {"a": "[" * 1000}  # brackets in a string do not nest


def test_a_progress_file_with_a_deep_line_keeps_its_other_points():
    text = "\n".join([json.dumps({"step": 1, "err": 0.5}), '{"step": 2, "err": ' + DEEP + "}",
                      json.dumps({"step": 3, "err": 0.25})])
    assert parse_progress(text, "err") == {1: 0.5, 3: 0.25}


def test_numbers_too_big_for_a_float_and_names_that_are_no_names_are_left_out():
    line = json.dumps({"a": 1.5, "b": int("9" * 400), "\x1b[2Jc": 1.0, "x" * 200: 2.0, "ok_name/v2": 3.0})
    assert parse_metrics(line) == {"a": 1.5, "ok_name/v2": 3.0}
    assert parse_progress(json.dumps({"step": int("9" * 400), "e": 1}) + "\n" + json.dumps({"step": -1, "e": 1}),
                          "e") == {}


def test_counts_are_capped():
    assert len(parse_metrics("\n".join(f"m{i}: {i}" for i in range(5000)))) == MAX_METRICS
    many = "\n".join(json.dumps({"step": i, "e": 1.0}) for i in range(MAX_POINTS + 50))
    assert len(parse_progress(many, "e")) == MAX_POINTS
    assert parse_metrics("x" * (MAX_LINE_BYTES + 1) + ": 1") == {}


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_parses_without_an_exception(text):
    metrics = parse_metrics(text)
    assert len(metrics) <= MAX_METRICS and all(isinstance(v, float) for v in metrics.values())
    parse_progress(text, "e")
    parse_line(text)


@settings(max_examples=150, deadline=None)
@given(JSON)
def test_a_json_line_is_read_as_json_reads_it_or_not_at_all(value):
    line = json.dumps(value)
    parsed = parse_line(line)
    if too_deep(line):
        assert parsed is None
    else:
        assert json.dumps(parsed) == line
    for name, number in parse_metrics(line).items():
        assert isinstance(value, dict) and name in value
        assert number == value[name] or (math.isnan(number) and math.isnan(value[name]))


@given(st.integers(min_value=0, max_value=200), st.booleans())
def test_nesting_is_counted_outside_strings(depth, arrays):
    line = "[" * depth + "]" * depth if arrays else '{"a":' * depth + "1" + "}" * depth
    assert too_deep(line) == (depth > MAX_DEPTH)
    assert not too_deep(json.dumps(line))  # the same brackets inside a string


@pytest.mark.timeout(30)
def test_lines_of_digits_built_to_backtrack_are_refused_in_linear_time():
    """``\\d+\\.?\\d*`` could split a run of digits n ways: a 64 KiB line of digits ending in a
    letter took about four minutes to refuse, and 16 of them an hour of the driver's time."""
    n = MAX_LINE_BYTES - 8
    lines = [f"a: {'1' * n}x", f"a: 1.{'1' * n}x", f"a: 1e{'1' * n}x", f"a: 1{' ' * n}x"] * 16
    assert parse_metrics("\n".join(lines)) == {}
    assert parse_metrics(f"a: {'1' * 20}\nb: 1.{'5' * 20}\nc: 3.\n") == {"a": float("1" * 20), "b": float("1." + "5" * 20),
                                                                       "c": 3.0}
