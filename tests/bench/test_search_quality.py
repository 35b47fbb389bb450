"""The bench's statistics over seeds: the interval of a median and how often a row passes issue
21's first check in a draw of 10 seeds."""

from __future__ import annotations

import json
import os
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


def test_a_tie_with_the_best_passes_and_a_tie_with_every_rival_does_not():
    """At least as good as every direct optimiser (a tie counts) and better than at least one."""
    rows = _rows(**{"progenitor: ties the best": [60.0] * 20,
                    "Optuna a": [60.0] * 20, "Optuna b": [61.0] * 20})
    passes = check_draws(rows, "minimize", draws=50)
    assert passes["progenitor: ties the best"] == 1.0
    rows = _rows(**{"progenitor": [61.0] * 20, "Optuna a": [61.0] * 20, "Optuna b": [61.0] * 20})
    assert check_draws(rows, "minimize", draws=50)["progenitor"] == 0.0


def test_every_row_is_drawn_on_the_same_seeds():
    """A row equal to a direct optimiser seed by seed ties it in every draw: drawn on other seeds
    (each row its own draw) they would part in some draws."""
    rng = np.random.default_rng(2)
    a = list(rng.normal(60, 3, 40))
    rows = _rows(**{"progenitor": a, "Optuna a": a, "Optuna b": [100.0] * 40})
    assert check_draws(rows, "minimize", draws=500)["progenitor"] == 1.0
    rows = _rows(**{"progenitor": a, "Optuna a": [x - 1e-9 for x in a], "Optuna b": [100.0] * 40})
    assert check_draws(rows, "minimize", draws=500)["progenitor"] == 0.0


def test_too_few_seeds_give_no_figure():
    rows = _rows(**{"progenitor": [1.0] * (2 * DRAW - 1), "Optuna a": [2.0] * (2 * DRAW - 1),
                    "Optuna b": [3.0] * (2 * DRAW - 1)})
    assert check_draws(rows, "minimize") == {}


@pytest.mark.parametrize("seeds", [20, 33])
def test_every_row_gets_a_share(seeds):
    rows = _rows(**{"progenitor": [1.0] * seeds, "Optuna a": [2.0] * seeds, "Optuna b": [3.0] * seeds})
    assert set(check_draws(rows, "minimize", draws=10)) == set(rows)


@pytest.mark.slow
def test_a_task_repository_is_benched_through_its_own_commands_as_the_bundled_task_is(tmp_path):
    """``--repo``: the example copied as a repository of one's own gives, through its own
    prepare, train and scorer commands, the figures the in-process task gives."""
    import shutil

    from bench.search_tasks import load_task

    repo = tmp_path / "mine"
    shutil.copytree(Path(__file__).resolve().parents[2] / "examples" / "tabular", repo)
    mine, bundled = load_task(str(repo), tmp_path / "cache"), load_task("tabular")
    try:
        for values in (mine.baseline, {**mine.baseline, "learning_rate": 0.03, "max_depth": 2, "subsample": 0.8}):
            got, want = mine.evaluate(values), bundled.evaluate(values)
            assert got.failure == ""
            assert got.metrics["rmse"] == pytest.approx(want.metrics["rmse"], rel=1e-6)  # printed to 6 places
            assert got.test == pytest.approx(want.test, rel=1e-6)
            assert got.per_example == pytest.approx(want.per_example, rel=1e-9)
        broken = mine.evaluate({**mine.baseline, "n_estimators": 0})  # train.py refuses it (ge=1)
        assert broken.metrics == {} and "train.command exited" in broken.failure and not broken.timed_out
        # A timeout is no property of the values: it is a failure for this run, not kept in the cache.
        train = mine.spec.train.model_copy(update={"timeout": 0.001})
        mine.spec = mine.spec.model_copy(update={"train": train})
        slow = mine.evaluate({**mine.baseline, "max_depth": 5})
        assert slow.timed_out and "timed out" in slow.failure
        cache_file, = (tmp_path / "cache").glob("repo-mine-*.jsonl")
        kept = [json.loads(line)[1] for line in cache_file.read_text().splitlines()]
        assert len(kept) == 3 and kept[-1]["failure"] == broken.failure
        # The cache is the repository's own: an edit to its training code reads none of it.
        (repo / "train.py").write_text((repo / "train.py").read_text() + "\n# edited\n")
        assert load_task(str(repo), tmp_path / "cache").cache_file != cache_file
    finally:
        mine.close()
        bundled.close()


def test_a_directory_that_is_no_task_ends_the_bench_with_one_sentence_and_exit_2(tmp_path):
    import subprocess

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "bench/search_quality.py", "--repo", str(tmp_path), "--seeds", "1"],
                          cwd=root, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(root)})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"bench: {tmp_path}:")
