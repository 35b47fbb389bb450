"""The bench's simulated loop (``bench/search_loop.py``) makes the proposals and promotions a real
run of the loop makes, on the tabular example: the table in docs/search.md is progenitor's."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import progenitor
from progenitor.compute import register_executor
from progenitor.options import RunOptions
from progenitor.testing import FakeExecutor, FakeRun, make_repo

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.search_loop import Step, simulate  # noqa: E402
from bench.search_tasks import load_task  # noqa: E402


def _fit(tree: Path, data: Path, out: Path) -> FakeRun:
    """The example's own train.py, in this process (the sandbox is not what is compared)."""
    import yaml

    task = load_task("tabular")
    train = sys.modules.get("tabular_train") or __import__("bench.search_tasks", fromlist=["_module"])._module(
        task.dir / "train.py", "tabular_train")
    model = train.fit(train.Config.model_validate(yaml.safe_load((tree / "config.yaml").read_text())), data)
    for split, name in (("holdout", "predictions.npy"), ("test", "test_predictions.npy")):
        np.save(out / name, model.predict(np.load(data / f"{split}_inputs.npy", allow_pickle=False)))
    return FakeRun()


@pytest.mark.slow
@pytest.mark.parametrize("search", ["", "search: {parents: archive, local: 0.5}\n", "search: {mode: async}\n"])
def test_the_simulated_loop_proposes_and_promotes_as_a_real_run(tmp_path, search):
    """The async mode with one slot (the executor's default here) is simulated as generations of
    one candidate: the bench's "async, 1 slot" row."""
    register_executor("in-process", lambda data, **_: FakeExecutor(data, training=_fit))
    example = ROOT / "examples" / "tabular"
    files = {p.name: p.read_text() for p in example.iterdir() if p.is_file()}
    files["progenitor.yaml"] += search + "sandbox: {backend: process}\n"
    repo = make_repo(tmp_path / "repo", files)
    summary = progenitor.start_run(repo, RunOptions(executor="in-process", generations=3, candidates=3, seed=5))
    real = progenitor.get_lineage(summary.run_id, repo).candidates

    task = load_task("tabular")
    if "async" in search:
        generations, candidates = 9, 1
    else:
        generations, candidates = 3, 3
    if "archive" in search:
        task.spec = task.spec.model_copy(update={"search": task.spec.search.model_copy(
            update={"parents": "archive", "local": 0.5})})
    steps: list[Step] = []
    picks = simulate(task, 5, generations=generations, candidates=candidates, record=(9,), steps=steps,
                     baseline_overlaps="async" in search)
    for step in steps:
        mine = [c for c in real if c.gen == step.gen]
        assert [c.parent_name for c in mine] == step.parents
        for cand, params in zip(mine, step.params):
            assert cand.params.keys() == params.keys()
            for name, value in params.items():
                assert cand.params[name] == pytest.approx(value), (step.gen, cand.k, name)
        promoted = [c.k for c in mine if c.decision.verdict == "promoted"]
        assert promoted == ([step.promoted] if step.promoted is not None else []), step.gen
    assert summary.champion == pytest.approx(picks[9].holdout, abs=1e-5)
    assert summary.honesty.champion_test == pytest.approx(picks[9].test, abs=1e-5)
    task.close()


def test_without_per_example_scores_the_simulated_loop_promotes_on_the_holdout_figure_as_the_loop_does():
    """The paired test needs per-example scores; a task whose scorer writes none is promoted on
    its holdout figure (workflows/evidence.py), in the bench as in a run."""
    task = load_task("tabular")
    try:
        held = simulate(task, 0, generations=3, candidates=4, significance=0.05, record=(12,))[12]
        assert not held.promoted, "on 88 patients the paired test at 0.05 holds this seed's gains back"
        plain = task.evaluate
        task.evaluate = lambda params: plain(params).model_copy(update={"per_example": []})
        moved = simulate(task, 0, generations=3, candidates=4, significance=0.05, record=(12,))[12]
        assert moved == simulate(task, 0, generations=3, candidates=4, significance=None, record=(12,))[12]
        assert moved.promoted
    finally:
        task.close()
