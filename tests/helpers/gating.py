"""Helpers for the oversight tests: toy repos in a given oversight mode, waiting on conditions,
running the real CLI in another process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Optional

from progenitor.compute import register_executor
from progenitor.testing import FakeExecutor, make_repo, toy_task_files
from tests.helpers import waiting

CONSTITUTION = """\
principles: [The scorer decides.]
"""


def toy_repo(path: Path, mode: str, generations: int = 1, candidates: int = 2, oversight: str = "",
             constitution: bool = False) -> Path:
    """The toy task with ``oversight.mode`` set (and more ``oversight`` fields), polled fast."""
    files = toy_task_files(generations=generations, candidates=candidates,
                           oversight=f"mode: {mode}, poll_seconds: 0.05{', ' + oversight if oversight else ''}")
    if constitution:
        files["progenitor.yaml"] += "safety: {constitution: constitution.yaml}\n"
        files["constitution.yaml"] = CONSTITUTION
    return make_repo(path, files)


def wait_for(condition: Callable[[], object], timeout: float = 90, what: str = "the condition") -> object:
    """``waiting.wait_for`` that fails the test, naming ``what``, when the time is up."""
    value = waiting.wait_for(condition, timeout, poll=0.05)
    if not value:
        raise AssertionError(f"timed out waiting for {what}")
    return value


def cli(*args: str, check: bool = True, timeout: float = 180, env: Optional[dict] = None) -> subprocess.CompletedProcess:
    """The real ``progenitor`` command in a process of its own (another shell)."""
    done = subprocess.run([sys.executable, "-m", "progenitor.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    if check and done.returncode != 0:
        raise AssertionError(f"progenitor {' '.join(args)} exited {done.returncode}: {done.stderr}{done.stdout}")
    return done


# Training is played in-process (``FakeExecutor``): these tests are about the gates, not the
# sandboxes, which the conformance, red-team and run tests put through real trainings.
register_executor("fake", FakeExecutor)
OPTIONS = dict(sandbox="process", executor="fake")
