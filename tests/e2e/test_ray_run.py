"""Whole runs on the Ray executor: Ctrl-C cancels the Ray tasks and their sandboxes, and a
resume finishes the run without training anything twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from progenitor.run.rundir import RunDir
from progenitor.testing import make_repo, toy_task_files
from tests.helpers.waiting import wait_for

pytestmark = pytest.mark.ray

SLEEPY_TRAIN = toy_task_files()["train.py"].replace(
    'w = float(config["w"])',
    'w = float(config["w"])\nimport time; print("sleeping", flush=True); time.sleep(float(config.get("sleep", 0)))'
)


def _leftovers(run_id: str, marker: str) -> list[str]:
    """This test's processes still running a candidate: its Ray training tasks (named after
    the run) or its sandboxed commands (whose command line or environment holds the
    marker). Other programs' sandboxes on the machine are not this test's business."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if f"progenitor-train:{run_id}/" in cmdline or marker in cmdline or marker in environ:
            found.append(f"{pid}: {cmdline[:120]}")
    return found


def _sleeping(run: RunDir, gen: int) -> set:
    """Candidates of ``gen`` that said, from inside their sandbox, that they are training."""
    return {e.k for e in run.events() if e.type == "train.line" and getattr(e, "gen", None) == gen and e.line == "sleeping"}


def _counts(run: RunDir, kind: str) -> dict:
    counts: dict = {}
    for e in run.events():
        if e.type == kind:
            counts[(e.gen, e.k)] = counts.get((e.gen, e.k), 0) + 1
    return counts


def test_ctrl_c_cancels_ray_tasks_then_resume_trains_nothing_twice(tmp_path):
    marker = f"PROGENITOR_TEST_MARK=run-{uuid.uuid4().hex[:8]}"
    files = toy_task_files(generations=2, candidates=2)
    files["train.py"] = SLEEPY_TRAIN
    files["config.yaml"] += "sleep: 6\n"
    files["progenitor.yaml"] = files["progenitor.yaml"].replace("command: python train.py", f"command: {marker} python train.py")
    repo = make_repo(tmp_path / "repo", files)
    cli = [sys.executable, "-m", "progenitor.cli"]
    proc = subprocess.Popen([*cli, "run", str(repo), "--sandbox", "process", "--executor", "ray"],
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    runs = repo / ".progenitor" / "runs"
    try:
        assert wait_for(lambda: runs.is_dir() and any(runs.iterdir()), 180), "the run never started"
        run = RunDir(repo, next(runs.iterdir()).name)
        # Both candidates of generation 1 are inside their sandboxes: they said so.
        assert wait_for(lambda: _sleeping(run, 1) == {0, 1}, 300), "the run never trained generation 1"
    except AssertionError:
        proc.kill()
        raise AssertionError(proc.communicate()[0] or "") from None
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    output, _ = proc.communicate(timeout=180)
    assert proc.returncode == 130, output
    assert f"progenitor resume {run.run_id}" in output
    assert wait_for(lambda: not _leftovers(run.run_id, marker), 60), _leftovers(run.run_id, marker)
    assert not (run.candidate(1, 0) / "train.json").exists(), "a cancelled training is not a result"

    resumed = subprocess.run([*cli, "resume", run.run_id, "--repo", str(repo), "-q"],
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    ends = _counts(run, "train.end")
    assert set(ends) == {(0, 0), (1, 0), (1, 1), (2, 0), (2, 1)} and all(n == 1 for n in ends.values()), ends
    assert _counts(run, "train.start")[(0, 0)] == 1, "the finished baseline was not trained again"
    assert wait_for(lambda: not _leftovers(run.run_id, marker), 60), _leftovers(run.run_id, marker)
