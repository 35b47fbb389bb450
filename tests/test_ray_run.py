"""Whole runs on the Ray executor: Ctrl-C cancels the Ray tasks and their sandboxes, and a
resume finishes the run without training anything twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from progenitor.runs import RunDir
from progenitor.testing import make_repo, toy_task_files

pytestmark = pytest.mark.ray

SLEEPY_TRAIN = toy_task_files()["train.py"].replace(
    'w = float(config["w"])', 'w = float(config["w"])\nimport time; time.sleep(float(config.get("sleep", 0)))'
)


def _leftovers() -> list[str]:
    """Processes still running a candidate: a Ray training task or a sandboxed command."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if "progenitor-train" in cmdline or "progenitor-job-" in cwd:
            found.append(f"{pid}: {cmdline[:120]}")
    return found


def _counts(run: RunDir, kind: str) -> dict:
    counts: dict = {}
    for e in run.events():
        if e["type"] == kind:
            counts[(e["gen"], e["k"])] = counts.get((e["gen"], e["k"]), 0) + 1
    return counts


def test_ctrl_c_cancels_ray_tasks_then_resume_trains_nothing_twice(tmp_path):
    files = toy_task_files(generations=2, candidates=2)
    files["train.py"] = SLEEPY_TRAIN
    files["config.yaml"] += "sleep: 6\n"
    repo = make_repo(tmp_path / "repo", files)
    cli = [sys.executable, "-m", "progenitor.cli"]
    proc = subprocess.Popen([*cli, "run", str(repo), "--sandbox", "process", "--executor", "ray"],
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    runs = repo / ".progenitor" / "runs"
    deadline = time.time() + 180
    run = None
    while time.time() < deadline:
        if run is None and runs.is_dir() and any(runs.iterdir()):
            run = RunDir(repo, next(runs.iterdir()).name)
        if run is not None and sum(k[0] == 1 for k in _counts(run, "train.start")) == 2:
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the run never trained generation 1: " + (proc.communicate()[0] or ""))
    time.sleep(1.0)  # both candidates are inside their sandboxes now
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, output
    assert f"progenitor resume {run.run_id}" in output
    time.sleep(1.0)
    assert _leftovers() == [], "a Ray task or a sandbox outlived Ctrl-C"
    assert not (run.candidate(1, 0) / "train.json").exists(), "a cancelled training is not a result"

    resumed = subprocess.run([*cli, "resume", run.run_id, "--repo", str(repo), "-q"],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    ends = _counts(run, "train.end")
    assert set(ends) == {(0, 0), (1, 0), (1, 1), (2, 0), (2, 1)} and all(n == 1 for n in ends.values()), ends
    assert _counts(run, "train.start")[(0, 0)] == 1, "the finished baseline was not trained again"
    assert _leftovers() == []
