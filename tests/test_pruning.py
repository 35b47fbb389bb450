"""Early stopping: Optuna's pruners decide from the champion's curve and the candidate's progress."""

from __future__ import annotations

import json
import pickle
import sys

import pytest
from pydantic import ValidationError

from progenitor.compute.base import TrainJob
from progenitor.compute.local import LocalExecutor
from progenitor.compute.pruning import PruneConfig, parse_progress, read_curve
from progenitor.sandbox.base import Limits

from ray_fixtures import tree_archive

CHAMPION = {step: 0.5 + 0.04 * step for step in range(1, 11)}  # accuracy rising to 0.9


def _append(path, *points, metric="accuracy"):
    with open(path, "a") as f:
        for step, value in points:
            f.write(json.dumps({"step": step, metric: value}) + "\n")


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


def test_local_executor_prunes_a_job_behind_the_champion(tmp_path):
    executor = LocalExecutor(None, workdir=tmp_path)
    [result] = list(executor.run([prune_job()]))
    assert result.pruned is not None, result.sandbox
    assert result.sandbox.status == "killed" and result.sandbox.reason.startswith("pruned: ")
    assert 3 <= result.pruned["step"] < BEHIND_STEPS and result.pruned["value"] == 0.1
    assert "finished" not in result.sandbox.stdout
