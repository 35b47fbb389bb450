"""Early stopping: Optuna's pruners decide from the champion's curve and the candidate's progress."""

from __future__ import annotations

import json
import pickle
import sys

import pytest
from pydantic import ValidationError

from progenitor.compute.base import TrainJob
from progenitor.compute.local import LocalExecutor
from progenitor.compute.pruning import CurveCheck, PruneConfig, check_curve, parse_progress, read_curve
from progenitor.sandbox.base import Limits
from tests.helpers.ray_fixtures import tree_archive

CHAMPION = {step: 0.5 + 0.04 * step for step in range(1, 11)}  # accuracy rising to 0.9


def _append(path, *points, metric="accuracy"):
    with open(path, "a") as f:
        for step, value in points:
            f.write(json.dumps({"step": step, metric: value}) + "\n")


@pytest.mark.loop
def test_a_candidate_clearly_behind_is_stopped_with_step_and_numbers(tmp_path):
    watch = PruneConfig(metric="accuracy", champion=CHAMPION).watcher("progress.jsonl")
    progress = tmp_path / "progress.jsonl"
    assert watch(tmp_path) is None  # no file yet
    verdicts = []
    for step in range(1, 8):
        _append(progress, (step, CHAMPION[step] - 0.2))
        verdicts.append(watch(tmp_path))
    first = next(i for i, v in enumerate(verdicts) if v)
    verdict = verdicts[first]
    assert first + 1 >= 3  # never before the warm-up
    assert verdict["step"] == first + 1 and verdict["metric"] == "accuracy"
    assert verdict["value"] == pytest.approx(CHAMPION[first + 1] - 0.2)
    assert verdict["champion"] == pytest.approx(CHAMPION[first + 1])
    assert verdict["rule"] == "wilcoxon"
    assert "clearly behind the champion's" in verdict["reason"]


@pytest.mark.loop
@pytest.mark.parametrize("rule", ["wilcoxon", "median"])
def test_a_candidate_ahead_or_level_runs_on(tmp_path, rule):
    watch = PruneConfig(metric="accuracy", champion=CHAMPION, rule=rule).watcher("p.jsonl")
    for step in range(1, 11):
        _append(tmp_path / "p.jsonl", (step, CHAMPION[step] + 0.01))
        assert watch(tmp_path) is None


def test_margin_spares_a_candidate_only_slightly_behind(tmp_path):
    strict = PruneConfig(metric="accuracy", champion=CHAMPION, rule="median", warmup_steps=1).watcher("p.jsonl")
    lenient = PruneConfig(metric="accuracy", champion=CHAMPION, rule="median", warmup_steps=1, margin=0.05).watcher("p.jsonl")
    _append(tmp_path / "p.jsonl", (1, CHAMPION[1] - 0.02))
    assert strict(tmp_path)["step"] == 1
    assert lenient(tmp_path) is None


def test_minimize_goal_and_median_rule(tmp_path):
    losses = {step: 1.0 / step for step in range(1, 11)}
    watch = PruneConfig(metric="loss", goal="minimize", champion=losses, rule="median", warmup_steps=2).watcher("p.jsonl")
    _append(tmp_path / "p.jsonl", (1, 2.0), metric="loss")
    assert watch(tmp_path) is None  # warm-up
    _append(tmp_path / "p.jsonl", (2, 0.4), metric="loss")  # better than the champion's 0.5
    assert watch(tmp_path) is None
    _append(tmp_path / "p.jsonl", (3, 0.9), (4, 0.8), metric="loss")  # best so far 0.4 > 0.25 at step 4
    verdict = watch(tmp_path)
    assert verdict["step"] == 4 and verdict["champion"] == 0.25 and verdict["rule"] == "median"


def test_diverged_candidate_is_stopped_at_once(tmp_path):
    watch = PruneConfig(metric="accuracy", champion=CHAMPION).watcher("p.jsonl")
    (tmp_path / "p.jsonl").write_text('{"step": 1, "accuracy": NaN}\n')
    verdict = watch(tmp_path)
    assert verdict["step"] == 1 and verdict["reason"].startswith("diverged")


def test_partial_lines_junk_and_symlinks_are_ignored(tmp_path):
    watch = PruneConfig(metric="accuracy", champion=CHAMPION, warmup_steps=1, rule="median").watcher("p.jsonl")
    path = tmp_path / "p.jsonl"
    path.write_text('not json\n{"step": "x", "accuracy": 1}\n{"step": 1, "accura')
    assert watch(tmp_path) is None and watch.points == {}
    with open(path, "a") as f:
        f.write('cy": 0.1}\n')  # the line completes: now it counts
    assert watch(tmp_path)["step"] == 1

    target = tmp_path / "elsewhere.jsonl"
    _append(target, (1, 0.0))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "p.jsonl").symlink_to(target)
    assert PruneConfig(metric="accuracy", champion=CHAMPION, warmup_steps=1).watcher("p.jsonl")(tmp_path / "out") is None


def test_config_travels_and_validates(tmp_path):
    config = PruneConfig(metric="accuracy", champion=CHAMPION)
    assert pickle.loads(pickle.dumps(config)) == config
    job = TrainJob(key="r/g1/c0", command="true", tree_archive=b"", limits=Limits(), prune=config, progress_file="p.jsonl")
    assert TrainJob.model_validate_json(job.model_dump_json()).prune == config
    with pytest.raises(ValidationError):
        PruneConfig(metric="accuracy", champion={})
    with pytest.raises(ValidationError):
        PruneConfig(metric="accuracy", champion=CHAMPION, rule="hyperband")


def test_curve_helpers(tmp_path):
    _append(tmp_path / "p.jsonl", (1, 0.1), (2, 0.2))
    assert read_curve(tmp_path / "p.jsonl", "accuracy") == {1: 0.1, 2: 0.2}
    assert read_curve(tmp_path / "missing.jsonl", "accuracy") == {}
    assert parse_progress('{"step": 3, "loss": 1}\n{"step": 4}\n', "loss") == {3: 1.0}


# A candidate that logs a poor accuracy, a point every 0.3 s, for up to 2 minutes: long
# enough that a pruner slowed down by a busy machine still stops it before its end.
BEHIND_STEPS = 400
BEHIND = """
import json, sys, time
for step in range(1, %d):
    with open(sys.argv[1] + "/progress.jsonl", "a") as f:
        f.write(json.dumps({"step": step, "accuracy": 0.1}) + "\\n")
    time.sleep(0.3)
print("finished")
""" % (BEHIND_STEPS + 1)


def prune_job(key: str = "r/g1/c0") -> TrainJob:
    return TrainJob(
        key=key, command=f"{sys.executable} behind.py {{out}}", tree_archive=tree_archive({"behind.py": BEHIND}),
        limits=Limits(cpus=1, wall_time=BEHIND_STEPS * 0.3 + 60), progress_file="progress.jsonl",
        prune=PruneConfig(metric="accuracy", champion=CHAMPION),
    )


@pytest.mark.loop
def test_local_executor_prunes_a_job_behind_the_champion(tmp_path):
    executor = LocalExecutor(None, workdir=tmp_path)
    [result] = list(executor.run([prune_job()]))
    assert result.pruned is not None, result.sandbox
    assert result.sandbox.status == "killed" and result.sandbox.reason.startswith("pruned: ")
    assert 3 <= result.pruned["step"] < BEHIND_STEPS and result.pruned["value"] == 0.1
    assert "finished" not in result.sandbox.stdout


# --- the champion's curve is checked against its trusted score before it prunes anyone ----------

HONEST = {1: 0.95, 2: 0.85, 3: 0.75}  # an error falling to what the scorer measured


def test_an_honest_curve_may_prune():
    assert check_curve(HONEST, "error", 0.75, 0.05, "minimize") == CurveCheck(True)
    assert check_curve(CHAMPION, "accuracy", 0.88, 0.05, "maximize").usable  # ends at 0.9, within 0.05


@pytest.mark.parametrize("curve, says", [
    ({1: 0.0, 2: 0.0, 3: 0.0}, "ends at error 0 (step 3) but the scorer measured 0.75"),  # the fake curve
    ({1: 0.0, 2: 0.0, 3: 0.76}, "claims error 0 at step 1, better than the 0.75"),  # flatters early, ends honestly
    ({1: float("nan"), 2: 0.75}, "holds nan at step 1"),
    ({1: 0.9, 2: float("inf")}, "holds inf at step 2"),
])
def test_a_curve_that_disagrees_with_the_trusted_score_is_not_used_and_is_a_gap(curve, says):
    check = check_curve(curve, "error", 0.75, 0.05, "minimize")
    assert not check.usable and check.gap and says in check.reason, check


def test_a_curve_the_scorer_does_not_measure_is_not_used_and_is_no_gap():
    check = check_curve(HONEST, "val_loss", None, 0.05, "minimize")
    assert not check.usable and not check.gap and "does not measure 'val_loss'" in check.reason


def test_a_nan_in_the_progress_file_is_read_and_then_refused(tmp_path):
    (tmp_path / "p.jsonl").write_text('{"step": 1, "error": NaN}\n{"step": 2, "error": 0.7}\n')
    curve = read_curve(tmp_path / "p.jsonl", "error")
    assert 1 in curve and not check_curve(curve, "error", 0.7, 0.05, "minimize").usable


def test_read_curve_follows_no_link_and_reads_no_fifo(tmp_path):
    import os

    _append(tmp_path / "real.jsonl", (1, 0.5))
    (tmp_path / "link.jsonl").symlink_to(tmp_path / "real.jsonl")
    os.mkfifo(tmp_path / "fifo.jsonl")
    assert read_curve(tmp_path / "link.jsonl", "accuracy") == {}
    assert read_curve(tmp_path / "fifo.jsonl", "accuracy") == {}  # returns at once, never blocks


def _champion_with_curve(tmp_path, curve_text: str, metrics: dict):
    from progenitor.candidate import Candidate, Champion, Proposal
    from progenitor.lineage import Lineage
    from progenitor.options import RunOptions
    from progenitor.oversight.audit import AuditLog
    from progenitor.run.rundir import RunDir, write_json
    from progenitor.task.spec import load_spec
    from progenitor.testing import make_repo, toy_task_files
    from progenitor.workflows.state import RunContext

    files = toy_task_files()
    files["progenitor.yaml"] = files["progenitor.yaml"].replace(
        "  resources: {cpus: 1, memory: 1g}",
        "  resources: {cpus: 1, memory: 1g}\n  early_stop: {metric: error, goal: minimize, rule: median}")
    repo = make_repo(tmp_path / "repo", files)
    lineage = Lineage(repo)
    run = RunDir(repo, "r20260101-curv")
    run.create({"repo": str(repo)})
    sha = lineage.head()
    champion = Champion(sha=sha, gen=1, k=0, metrics=metrics)
    cand = Candidate.new(Proposal(gen=1, k=0, hypothesis="the champion"), run.run_id, sha, "error")
    write_json(run.candidate(1, 0) / "record.json", cand.advance("committed", sha=sha).record())
    (run.candidate(1, 0) / "out").mkdir()
    (run.candidate(1, 0) / "out" / "progress.jsonl").write_text(curve_text)
    ctx = RunContext(run=run, lineage=lineage, spec=load_spec(repo), options=RunOptions(), backend="process",
                     backend_options={}, audit=AuditLog(tmp_path / "audit.jsonl"))
    return ctx, champion


def test_a_champion_whose_curve_lies_prunes_nobody_and_gets_a_finding(tmp_path):
    from progenitor.run.rundir import read_json
    from progenitor.workflows.training import prune_config

    fake = "".join(json.dumps({"step": s, "error": 0.0}) + "\n" for s in range(1, 6))
    ctx, champion = _champion_with_curve(tmp_path, fake, {"error": 0.75})
    assert prune_config(ctx, champion) is None
    [event] = [e for e in ctx.run.events() if e.type == "train.curve_unused"]
    assert "early stopping is off" in event.reason and "scorer measured 0.75" in event.reason
    for record in (read_json(ctx.run.candidate(1, 0) / "record.json"), ctx.lineage.read_note(champion.sha)):
        assert [f["rule"] for f in record["findings"]] == ["progress-gap"]
    assert prune_config(ctx, champion) is None  # again (a resume): the finding is not repeated
    assert len(read_json(ctx.run.candidate(1, 0) / "record.json")["findings"]) == 1


def test_a_champion_whose_curve_is_honest_prunes(tmp_path):
    from progenitor.workflows.training import prune_config

    honest = "".join(json.dumps({"step": s, "error": v}) + "\n" for s, v in HONEST.items())
    ctx, champion = _champion_with_curve(tmp_path, honest, {"error": 0.76})
    config = prune_config(ctx, champion)
    assert config is not None and config.champion == HONEST
    assert not [e for e in ctx.run.events() if e.type == "train.curve_unused"]
