"""The scorer contract: what the trusted scorer may print, and what an error shows of it."""

from __future__ import annotations

import math

from progenitor.boundary.metrics import parse_metrics
from progenitor.evaluation.scorer import last_lines


def test_metric_lines_and_json_object_lines_are_read_the_last_one_winning():
    text = "\n".join([
        "accuracy: 0.5",
        '{"rmse": 54.9, "mae": 40.1, "model": "ridge", "ok": true, "nested": {"x": 1}}',
        "epoch 3 done",
        '{"rmse": 54.1}',
        "not json {",
        '[1, 2]',
        "accuracy: 0.75",
    ])
    assert parse_metrics(text) == {"accuracy": 0.75, "rmse": 54.1, "mae": 40.1}


def test_only_the_contract_is_a_metric():
    """A script that echoes its config (``lr = 0.01``) does not make it a self-report."""
    echoed = "\n".join(["lr = 0.01", "accuracy = 0.99", "accuracy 0.99", "accuracy=0.99", "[0.99]", "accuracy: high",
                        "epoch: 3 of 10", '{"accuracy": 0.99} trailing', '{"a": 1}{"b": 2}'])
    assert parse_metrics(echoed) == {}
    assert parse_metrics("accuracy: 0.5\naccuracy = 0.99") == {"accuracy": 0.5}


def test_a_json_nan_is_kept_for_the_finite_check():
    assert math.isnan(parse_metrics('{"rmse": NaN}')["rmse"])


def test_last_lines_stay_on_one_line():
    assert last_lines("\n\n") == "it printed nothing"
    assert last_lines("a\n\nb\n" + "x" * 500) == "its last lines: a | b | " + "x" * 200
    assert last_lines("\n".join(str(i) for i in range(10))) == "its last lines: 5 | 6 | 7 | 8 | 9"
