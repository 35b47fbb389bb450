"""Honest final numbers: a test split the loop never selects on, a bound on selection luck,
and guards that hold against the baseline so small regressions cannot add up."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import progenitor
from progenitor.cli import cli
from progenitor.compute import register_executor
from progenitor.errors import SpecError
from progenitor.evaluation.honesty import selection_luck
from progenitor.options import RunOptions
from progenitor.task.spec import load_spec_text
from progenitor.testing import FakeExecutor, make_repo, scripted, toy_task_files
from tests.helpers.records import lineage_json

FAST = RunOptions(executor="fake", sandbox="process", seed=7)


@pytest.fixture(autouse=True)
def fake_executor():
    register_executor("fake", FakeExecutor)


@pytest.mark.loop
def test_the_test_split_is_scored_for_the_baseline_and_each_champion_only(tmp_path):
    repo = make_repo(tmp_path / "repo", toy_task_files(generations=2, candidates=3, test_split=True))
    summary = progenitor.start_run(repo, FAST)
    h = summary.honesty
    assert h.test_metric == "test_error" and h.baseline_test is not None and h.champion_test is not None
    assert h.champion_test < h.baseline_test, "the champion's gain on the holdout carries over to the test split"
    run = repo / ".progenitor" / "runs" / summary.run_id
    tested = sorted(p.parent.relative_to(run).as_posix() for p in run.glob("g*/c*/test_score.json"))
    lineage = lineage_json(summary.run_id, repo=repo)
    promoted = sorted(f"g{c['gen']}/c{c['k']}" for c in lineage["candidates"] if c["decision"]["verdict"] == "promoted")
    assert tested == ["g0/c0", *promoted], "no other candidate is ever scored on the test split"
    for cand in lineage["candidates"]:
        assert bool(cand["test_metrics"]) == (cand["decision"]["verdict"] == "promoted")
        assert not any(k.startswith("test_") for k in cand["metrics"])
    # the labels never reach a candidate, and no test figure reaches the search
    assert not (run / "visible" / "test_labels.npy").exists() and (run / "visible" / "test_inputs.npy").exists()
    assert "test_" not in (run / "study.log").read_text()


@pytest.mark.loop
def test_selection_does_not_change_when_the_test_labels_do(tmp_path):
    honest = make_repo(tmp_path / "honest", toy_task_files(generations=3, candidates=3, test_split=True))
    swapped = make_repo(tmp_path / "swapped", toy_task_files(generations=3, candidates=3, test_split=True,
                                                              test_labels="-7 * x[40:][::-1]"))
    runs = [progenitor.start_run(repo, FAST) for repo in (honest, swapped)]
    picks = []
    for summary, repo in zip(runs, (honest, swapped)):
        cands = lineage_json(summary.run_id, repo=repo)["candidates"]
        picks.append([(c["gen"], c["k"], c["proposal"]["params"], c["decision"]["verdict"]) for c in cands])
    assert picks[0] == picks[1], "the same candidates were proposed and the same ones promoted"
    assert runs[0].champion == runs[1].champion
    assert runs[0].honesty.champion_test != runs[1].honesty.champion_test


@pytest.mark.loop
def test_a_task_without_a_test_split_runs_as_before_and_says_so(tmp_path):
    repo = make_repo(tmp_path / "repo", toy_task_files(generations=1))
    result = CliRunner().invoke(cli, ["run", str(repo), "--executor", "local", "--sandbox", "process", "-q"])
    assert result.exit_code == 0, result.output
    assert "champion error:" in result.output and "test error" not in result.output
    assert "has no test split: the champion's figure is the same holdout figure that selected it" in result.output
    status = json.loads(CliRunner().invoke(cli, ["status", "--repo", str(repo), "--json"]).output)[0]
    assert status["summary"]["honesty"]["test_metric"] is None


@pytest.mark.loop
def test_the_cli_prints_holdout_and_test_figures_for_baseline_and_champion(tmp_path):
    repo = make_repo(tmp_path / "repo", toy_task_files(generations=1, test_split=True))
    result = CliRunner().invoke(cli, ["run", str(repo), "--executor", "local", "--sandbox", "process", "-q"])
    assert result.exit_code == 0, result.output
    for line in ("baseline error: ", "champion error: ", "baseline test error: ", "champion test error: "):
        assert any(out.startswith(line) for out in result.output.splitlines()), line


def test_selection_luck_follows_hoeffding_with_a_union_over_the_candidates():
    # eps = sqrt(ln(2m / delta) / (2n)): 13 candidates on 360 examples at 95 %
    assert selection_luck(360, 13, 1.0) == pytest.approx(np.sqrt(np.log(2 * 13 / 0.05) / 720))
    assert selection_luck(360, 100, 1.0) > selection_luck(360, 13, 1.0) > selection_luck(3600, 13, 1.0)
    assert selection_luck(360, 13, 2.0) == pytest.approx(2 * selection_luck(360, 13, 1.0))


@pytest.mark.loop
def test_the_summary_warns_when_the_gain_is_within_selection_luck(tmp_path):
    files = toy_task_files(generations=1, candidates=2)
    files["progenitor.yaml"] = files["progenitor.yaml"].replace(
        "objective: {metric: error, goal: minimize}", "objective: {metric: error, goal: minimize, range: [0, 10]}")
    repo = make_repo(tmp_path / "repo", files)
    script = [[{"hypothesis": "a little closer", "params": {"w": 1.2}}, {"hypothesis": "the same", "params": {"w": 1.0}}]]
    summary = progenitor.start_run(repo, FAST, architect=scripted(script))
    h = summary.honesty
    assert h.holdout_n == 20 and h.compared == 3 and h.selection_luck == pytest.approx(selection_luck(20, 3, 10.0))
    assert any("selection alone can make the best look up to" in note for note in h.notes), h.notes


DRIFT_SCORE = toy_task_files()["score.py"].replace(
    'print(f"params: 1")',
    'import os; print("ece: " + open(os.path.join(os.path.dirname(args.predictions), "ece.txt")).read())')


def drift_training(tree, data, out):
    from progenitor.testing import toy_training

    played = toy_training(tree, data, out)
    import yaml

    (out / "ece.txt").write_text(str(yaml.safe_load((tree / "config.yaml").read_text())["ece"]))
    return played


@pytest.mark.loop
def test_small_guard_regressions_stop_being_promoted_once_they_add_up_past_the_baseline(tmp_path):
    register_executor("drifting", lambda data, **_: FakeExecutor(data, training=drift_training))
    files = toy_task_files(generations=4, candidates=1)
    files["score.py"] = DRIFT_SCORE
    files["config.yaml"] += "ece: 0.10\n"
    files["progenitor.yaml"] = files["progenitor.yaml"].replace(
        "guards: [{metric: params, max: 10}]", "guards: [{metric: ece, goal: minimize, max_regression: 0.05}]")
    repo = make_repo(tmp_path / "repo", files)
    # Each generation is better on the objective and 0.04 worse on the guard: within 0.05 of the
    # champion it replaces every time, but the third step is 0.12 worse than the baseline.
    script = [[{"hypothesis": f"step {i}", "params": {"w": 1.0 + 0.5 * i, "ece": round(0.10 + 0.04 * i, 2)}}]
              for i in range(1, 5)]
    summary = progenitor.start_run(repo, FAST.model_copy(update={"executor": "drifting"}), architect=scripted(script))
    cands = lineage_json(summary.run_id, repo=repo)["candidates"]
    verdicts = [c["decision"]["verdict"] for c in cands]
    assert verdicts == ["promoted", "not promoted", "not promoted", "not promoted"], verdicts
    assert "from the human baseline's 0.1" in cands[1]["decision"]["reason"]
    assert summary.drift["ece"]["change"] == pytest.approx(-0.04)


@pytest.mark.parametrize("change, message", [
    (lambda t: t.replace("visible: [train_*.npy, holdout_inputs.npy, test_inputs.npy]",
                         "visible: [train_*.npy, holdout_inputs.npy, test_*.npy]"),
     "'data.visible' pattern 'test_*.npy' matches the test labels 'test_labels.npy' ('data.test.labels'), "
     "which candidates must never see; narrow the pattern"),
    (lambda t: t[:t.index("  test:\n    command")] + t[t.index("protected:"):],
     "'data.test' declares a test split but 'scorer.test' does not say how to score it; add scorer.test"),
    (lambda t: t.replace("test: {inputs: test_inputs.npy, labels: test_labels.npy}", "test: null"),
     "'scorer.test' scores a test split that 'data.test' does not declare; add data.test"),
])
def test_a_test_split_that_cannot_be_honest_is_refused(change, message):
    text = change(toy_task_files(test_split=True)["progenitor.yaml"])
    with pytest.raises(SpecError) as err:
        load_spec_text(text)
    assert str(err.value) == f"progenitor.yaml: {message}" or str(err.value).startswith(f"progenitor.yaml: {message}")
    assert "(top level)" not in str(err.value) and "{" not in str(err.value), "never the whole spec as a value"


def test_a_directory_pattern_that_would_show_the_test_labels_is_refused(tmp_path):
    from progenitor.evaluation.visible import visible_matches

    text = toy_task_files(test_split=True)["progenitor.yaml"]
    text = text.replace("visible: [train_*.npy, holdout_inputs.npy, test_inputs.npy]",
                        "visible: [train_*.npy, holdout_inputs.npy, test, test/inputs.npy]")
    text = text.replace("test: {inputs: test_inputs.npy, labels: test_labels.npy}",
                        "test: {inputs: test/inputs.npy, labels: test/labels.npy}")
    spec = load_spec_text(text)  # the names alone pass: the directory holds the labels
    data = tmp_path / "data"
    (data / "test").mkdir(parents=True)
    for name in ("train_x.npy", "train_y.npy", "holdout_inputs.npy", "holdout_labels.npy", "test/inputs.npy",
                 "test/labels.npy"):
        np.save(data / name, np.zeros(3))
    matched, problems = visible_matches(spec, data)
    assert problems == ["data.visible pattern 'test' matches test/labels.npy (labels the scorer compares "
                        "against): candidates must never see it; narrow the pattern"]
    assert data / "test" not in matched


@pytest.mark.loop
def test_a_champion_that_beats_the_baseline_on_the_holdout_but_not_on_the_test_split_is_shown_as_such(tmp_path):
    # The test split's labels follow w = 1 (the baseline's own value): any champion closer to
    # the holdout's w = 3 is worse there, and the summary says so instead of hiding it. (Not
    # exactly 1 * x: labels identical to the visible inputs are refused as a leak.)
    repo = make_repo(tmp_path / "repo", toy_task_files(generations=1, candidates=1, test_split=True,
                                                        test_labels="1 * x[40:] + 0.001"))
    summary = progenitor.start_run(repo, FAST, architect=scripted([[{"hypothesis": "closer", "params": {"w": 2.9}}]]))
    h = summary.honesty
    assert summary.champion < summary.baseline and h.champion_test > h.baseline_test
    assert any("beats the baseline on the holdout but not on the test split" in note for note in h.notes), h.notes
