"""With bubblewrap removed, a run either isolates the labels or refuses to start with one
sentence; in no mode can a candidate read the holdout labels.

Each test runs a real driver in a private mount namespace where ``bwrap`` is hidden (bound
over by ``/dev/null``, as the machine would be without it): as root, the run isolates with
the view it builds itself; as an unprivileged user (the interpreter's closed home covered
by a tmpfs with the Python bound back, as on a machine where it is installed for everyone),
it refuses, or runs unsealed only when asked, saying so loudly.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from progenitor.sandbox.access import unreachable_parent

ROOT = Path(__file__).resolve().parents[2]
BWRAP = shutil.which("bwrap")
NOBODY = 65534
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                                 reason="hiding bubblewrap needs root and unshare(1)")]

DRIVER = r"""
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from progenitor.api import get_lineage, start_run
from progenitor.testing import make_repo, scripted, toy_task_files
from progenitor.options import RunOptions
from tests.redteam.attacks import READ_LABELS_BUILT, OTHER_CANDIDATES

files = toy_task_files(generations=1, candidates=3)
# No rules: the static review would reject these attacks before they ran; the sandbox alone must hold.
files["progenitor.yaml"] += "safety: {constitution: constitution.yaml, bandit: false}\n"
files["constitution.yaml"] = "principles: [the sandbox alone is tested here]\n"
repo = make_repo(Path(sys.argv[1]), files)
script = [[{"hypothesis": "reads the labels", "edits": {"train.py": READ_LABELS_BUILT}},
           {"hypothesis": "peeks at others", "edits": {"train.py": OTHER_CANDIDATES}},
           {"hypothesis": "honest", "params": {"w": 2.9}}]]
summary = start_run(repo, RunOptions(sandbox="process", executor=sys.argv[2]), architect=scripted(script),
                    run_id="r20260101-00aa")
lineage = get_lineage("r20260101-00aa", repo).model_dump(mode="json", by_alias=True)
import hashlib, tempfile
from progenitor.compute.base import pack_dir
from progenitor.compute.ray_executor import DATA_CAP_BYTES
from progenitor.compute.ray_task import CACHE_DIR_NAME
from progenitor.run.rundir import RunDir
# Only this run's entry of the node cache (other runs on the machine share the cache): the
# digest of its own visible data, as the Ray executor names it.
archive, _ = pack_dir(RunDir(repo, "r20260101-00aa").visible, DATA_CAP_BYTES)
own = Path(tempfile.gettempdir()) / CACHE_DIR_NAME / hashlib.sha256(archive).hexdigest()[:32]
cached = sorted({p.name for p in own.rglob("*") if p.is_file()}) if own.is_dir() else []
print("RESULT " + json.dumps({"summary": summary.model_dump(), "candidates": lineage["candidates"],
                              "champion": lineage.get("champion"), "cached": cached}))
"""


def hidden(command: list[str], prelude: str = "") -> list[str]:
    """``command`` in a private mount namespace where bwrap is missing (``prelude`` runs first)."""
    hide = f"mount --bind /dev/null {BWRAP}; " if BWRAP else ""
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", f'{hide}{prelude}exec "$@"', "sh", *command]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "DOCKER_HOST": "unix:///nonexistent/docker.sock"}


def run_driver(tmp_path: Path, executor: str) -> dict:
    proc = subprocess.run(hidden([sys.executable, "-c", DRIVER, str(tmp_path / "repo"), executor, str(ROOT / "tests")]),
                          capture_output=True, text=True, timeout=600, env=env())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])


def check_sealed_run(result: dict) -> None:
    summary, candidates = result["summary"], {c["k"]: c for c in result["candidates"]}
    assert summary["sealed"] is True
    assert summary["isolation"].startswith("whitelist view in our own mount namespace (bubblewrap unusable")
    assert candidates[0]["status"] == "failed" and "holdout labels unreachable" in candidates[0]["reason"]
    assert candidates[1]["status"] == "failed" and "other candidates unreachable" in candidates[1]["reason"]
    assert result["champion"] == candidates[2]["sha"], "the honest candidate should be champion"
    assert "mountns" in candidates[2]["train"]["isolation"]


def test_as_root_without_bwrap_a_run_isolates_the_labels(tmp_path):
    check_sealed_run(run_driver(tmp_path, "local"))


@pytest.mark.ray
def test_as_root_without_bwrap_a_ray_run_isolates_the_labels(tmp_path):
    result = run_driver(tmp_path, "ray")
    check_sealed_run(result)
    # The node's data cache holds the visible files only (any run's: it is shared by digest).
    assert {"holdout_inputs.npy", "train_x.npy", "train_y.npy"} <= set(result["cached"])
    assert not [name for name in result["cached"] if "label" in name], result["cached"]


def test_doctor_without_bwrap_proves_the_view_with_a_probe():
    proc = subprocess.run(hidden([sys.executable, "-m", "progenitor.cli", "doctor"]), capture_output=True,
                          text=True, timeout=300, env={**env(), "COLUMNS": "400"})
    line = next(ln for ln in proc.stdout.splitlines() if "sandbox process" in ln)
    assert "│ ok │" in line, line
    assert "whitelist view in our own mount namespace" in line and "could not read the labels" in line, line


# --- not root: no bubblewrap, no Docker --------------------------------------------------------

def as_nobody(command: list[str]) -> list[str]:
    """``command`` as uid 65534 in the bwrap-less namespace, with this interpreter reachable:
    a closed directory above it (a pyenv in root's home) is covered by a tmpfs and the
    interpreter's prefix bound back, so nothing else of that home shows."""
    prelude = ""
    for prefix in dict.fromkeys([sys.base_prefix, sys.prefix]):
        closed = unreachable_parent(Path(prefix), NOBODY)
        if closed is not None:
            prelude += (f"keep=$(mktemp -d); mount --bind {prefix} $keep; mount -t tmpfs -o mode=0755 tmpfs {closed}; "
                        f"mkdir -p {prefix}; mount --move $keep {prefix}; ")
    setpriv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]
    return hidden([*setpriv, *command], prelude)


@pytest.fixture
def nobody_repo():
    """A toy model repo that uid 65534 owns, and a home for it."""
    from progenitor.testing import make_repo, toy_task_files

    if not shutil.which("setpriv"):
        pytest.skip("setpriv(1) is needed to run as another user")
    for top in (ROOT, Path(sys.prefix)):
        if unreachable_parent(top, NOBODY) is not None:
            pytest.skip(f"{top} is closed to other users")
    base = Path(tempfile.mkdtemp(prefix="progenitor-nobody-"))
    repo = make_repo(base / "repo", toy_task_files(generations=1, candidates=1))
    subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(base)], check=True)
    os.chmod(base, 0o755)
    yield base, repo
    shutil.rmtree(base, ignore_errors=True)


def nobody_run(base: Path, repo: Path, *flags: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "progenitor.cli", "run", str(repo), "--sandbox", "process", "--executor",
               "local", *flags]
    environ = {**env(), "HOME": str(base), "PROGENITOR_HOME": str(base / "state"), "COLUMNS": "200",
               "GIT_CONFIG_GLOBAL": "/dev/null"}
    return subprocess.run(as_nobody(command), capture_output=True, text=True, timeout=300, env=environ)


def test_not_root_without_bwrap_or_docker_a_run_refuses_in_one_sentence(nobody_repo):
    base, repo = nobody_repo
    proc = nobody_run(base, repo)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    message = proc.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert "cannot hide the holdout labels" in message and "install bubblewrap" in message, message
    assert not (repo / ".progenitor" / "runs").exists() or not any((repo / ".progenitor" / "runs").iterdir())


def test_not_root_without_a_cgroup_a_run_refuses_unheld_limits_in_one_sentence(nobody_repo):
    base, repo = nobody_repo
    proc = nobody_run(base, repo, "--allow-unsealed")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    message = proc.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert message.startswith("error: the process sandbox cannot enforce the 'memory' and 'cpus' and "
                              "'processes' limits here"), message
    assert "--allow-unenforced-limits" in message and "Delegate=yes" in message, message
    assert not (repo / ".progenitor" / "runs").exists() or not any((repo / ".progenitor" / "runs").iterdir())


def test_not_root_opted_in_runs_unsealed_and_unlimited_and_says_so(nobody_repo):
    base, repo = nobody_repo
    proc = nobody_run(base, repo, "--allow-unsealed", "--allow-unenforced-limits")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "UNSEALED SANDBOX" in proc.stdout  # the warnings at the start
    assert "UNENFORCED LIMITS" in proc.stdout and "memory limit (" in proc.stdout
    assert "candidates could read the holdout labels (--allow-unsealed)" in proc.stdout  # and in the summary
    assert "did not hold the cpus, memory, processes limits (--allow-unenforced-limits)" in proc.stdout
    (run,) = (repo / ".progenitor" / "runs").iterdir()
    meta = json.loads((run / "run.json").read_text())
    assert meta["sealed"] is False and meta["options"]["allow_unsealed"] is True
    assert meta["summary"]["sealed"] is False
    assert meta["options"]["allow_unenforced_limits"] is True
    assert set(meta["unenforced_limits"]) == set(meta["summary"]["unenforced_limits"]) == {"memory", "cpus", "processes"}
