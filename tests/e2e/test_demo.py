"""The digits example end to end through the real CLI (slow: trains real PyTorch models)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import git
import pytest

pytestmark = pytest.mark.slow  # whole runs, end to end: CI runs them, `make test-fast` does not


@pytest.mark.slow
def test_init_example_then_run_digits(tmp_path):
    repo = tmp_path / "digits"
    cli = [sys.executable, "-m", "progenitor.cli"]
    subprocess.run([*cli, "init", "--example", "digits", str(repo)], check=True, capture_output=True)
    assert len(list(git.Repo(repo).iter_commits())) == 1
    # exactly what `make demo` runs: the example's own budget (3 generations x 4 candidates),
    # the default executor (Ray) and sandbox (auto)
    proc = subprocess.run([*cli, "run", str(repo), "--generations", "3"], capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    baseline = float(re.search(r"^baseline accuracy: ([\d.]+)$", proc.stdout, re.M).group(1))
    champion = float(re.search(r"^champion accuracy: ([\d.]+)$", proc.stdout, re.M).group(1))
    assert 0.85 < baseline <= champion <= 1.0
    baseline_test = float(re.search(r"^baseline test accuracy: ([\d.]+)$", proc.stdout, re.M).group(1))
    champion_test = float(re.search(r"^champion test accuracy: ([\d.]+)$", proc.stdout, re.M).group(1))
    assert 0.85 < baseline_test <= 1.0 and 0.85 < champion_test <= 1.0
    assert "12 tried" in proc.stdout and "budget: 3 generations done" in proc.stdout
    log = git.Repo(repo).git.log("--notes=progenitor", "--all")
    assert log.count('"hypothesis": "search trial') == 12


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="hiding bubblewrap needs root")
def test_demo_runs_with_bubblewrap_hidden_and_says_which_isolation(tmp_path):
    """The demo's path on a machine whose bubblewrap is unusable: the process sandbox, as root,
    builds the view itself; the run says so on its first line and ends with the two lines."""
    repo = tmp_path / "digits"
    cli = [sys.executable, "-m", "progenitor.cli"]
    subprocess.run([*cli, "init", "--example", "digits", str(repo)], check=True, capture_output=True)
    bwrap = shutil.which("bwrap")
    hide = f"mount --bind /dev/null {bwrap}; " if bwrap else ""
    command = [*cli, "run", str(repo), "--generations", "1", "--sandbox", "process"]
    proc = subprocess.run(["unshare", "-m", "sh", "-c", hide + 'exec "$@"', "sh", *command],
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    start = next(line for line in proc.stdout.splitlines() if "sandbox process" in line)
    assert "whitelist view in our own mount namespace (bubblewrap unusable" in start, start
    baseline = float(re.search(r"^baseline accuracy: ([\d.]+)$", proc.stdout, re.M).group(1))
    champion = float(re.search(r"^champion accuracy: ([\d.]+)$", proc.stdout, re.M).group(1))
    assert 0.85 < baseline <= champion <= 1.0
