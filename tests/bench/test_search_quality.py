"""The bench's statistics over seeds: the interval of a median and how often a row passes issue
21's first check in a draw of 10 seeds."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.search_quality import DRAW, check_draws, median_interval  # noqa: E402


def _rows(**tests: list[float]) -> dict[str, list[dict]]:
    return {name: [{"test": t} for t in values] for name, values in tests.items()}


def test_the_median_interval_holds_the_median_and_narrows_with_more_seeds():
    rng = np.random.default_rng(3)
    few, many = rng.normal(60, 1, 10), rng.normal(60, 1, 400)
    low, high = median_interval(list(few))
    assert low <= float(np.median(few)) <= high
    wide, narrow = high - low, np.subtract(*median_interval(list(many))[::-1])
    assert narrow < wide / 3


def test_a_row_better_on_every_seed_always_passes_and_a_worse_one_never():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.5, 40)
    rows = _rows(**{"progenitor: best": list(58 + noise), "progenitor: worst": list(70 + noise),
                    "Optuna a": list(60 + noise), "Optuna b": list(61 + noise), "Optuna c": list(62 + noise)})
    passes = check_draws(rows, "minimize", draws=200)
    assert passes["progenitor: best"] == 1.0
    assert passes["progenitor: worst"] == 0.0
    # a direct optimiser is held to the others: a is the best of them on every seed, c the worst
    assert passes["Optuna a"] == 1.0 and passes["Optuna c"] == 0.0


def test_the_goal_decides_which_way_is_better():
    rows = _rows(**{"progenitor": [0.99] * 20, "Optuna a": [0.95] * 20, "Optuna b": [0.90] * 20})
    assert check_draws(rows, "maximize", draws=50)["progenitor"] == 1.0
    assert check_draws(rows, "minimize", draws=50)["progenitor"] == 0.0


def test_equal_rows_pass_about_as_often_as_the_seeds_let_them():
    """Four rows drawn alike: each passes in a share of the draws well away from 0 and 1 (the
    check is decided by the seeds), and ties count as at least as good."""
    rng = np.random.default_rng(1)
    rows = _rows(**{name: list(rng.normal(60, 1, 60)) for name in ("progenitor", "Optuna a", "Optuna b", "Optuna c")})
    share = check_draws(rows, "minimize", draws=2000)["progenitor"]
    assert 0.05 < share < 0.6


def test_too_few_seeds_give_no_figure():
    rows = _rows(**{"progenitor": [1.0] * (2 * DRAW - 1), "Optuna a": [2.0] * (2 * DRAW - 1),
                    "Optuna b": [3.0] * (2 * DRAW - 1)})
    assert check_draws(rows, "minimize") == {}


@pytest.mark.parametrize("seeds", [20, 33])
def test_every_row_gets_a_share(seeds):
    rows = _rows(**{"progenitor": [1.0] * seeds, "Optuna a": [2.0] * seeds, "Optuna b": [3.0] * seeds})
    assert set(check_draws(rows, "minimize", draws=10)) == set(rows)
