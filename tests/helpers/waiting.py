"""Waiting on conditions, not sleeping for fixed times: a busy machine is slow, never wrong."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, TypeVar

import pytest

from progenitor.run.rundir import RunDir

T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float, poll: float = 0.1) -> T:
    """Poll ``condition`` until it returns something true (returned) or ``timeout`` seconds
    pass (then its last value, false, is returned for the caller's assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(poll)


HOLDER = ("python3 -c \"import fcntl, sys, time; f = open(sys.argv[1], 'w'); fcntl.flock(f, fcntl.LOCK_EX); "
          "open(sys.argv[2], 'w').close(); time.sleep(600)\" {out}/lock {out}/ready")
"""A command that takes a lock on ``{out}/lock``, says so by making ``{out}/ready``, and holds
it for ten minutes. The lock is free again only when the process is gone, whatever pid
namespace it lived in: that is how a test sees, without fixed sleeps, that a sandbox killed
everything it ran."""
WAIT_READY = "while [ ! -e {out}/ready ]; do sleep 0.02; done"
"""Shell that waits until the holder has its lock."""


def lock_released(out: Path, timeout: float = 30.0) -> bool:
    """Is the holder's lock free (its process gone)? Waits up to ``timeout`` for it."""
    import fcntl

    def free() -> bool:
        with open(out / "lock", "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            fcntl.flock(handle, fcntl.LOCK_UN)
            return True

    return wait_for(free, timeout)


def run_then_kill(repo: Path, args: list[str], ready: Callable[[RunDir], bool], timeout: float, what: str) -> RunDir:
    """Start ``progenitor run REPO ARGS`` in a session of its own, wait until its run (the first
    under the repository's runs) satisfies ``ready(run)``, then SIGKILL the whole session, as a
    machine that dies would, and return the run. The test fails, naming ``what``, if the run
    never gets there within ``timeout`` seconds."""
    proc = subprocess.Popen([sys.executable, "-m", "progenitor.cli", "run", str(repo), *args],
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs_dir = repo / ".progenitor" / "runs"
    run = None
    try:
        def reached() -> bool:
            nonlocal run
            if run is None and runs_dir.is_dir() and any(runs_dir.iterdir()):
                run = RunDir(repo, next(runs_dir.iterdir()).name)
            return run is not None and ready(run)

        if not wait_for(reached, timeout):
            pytest.fail(f"the run never got there: {what}")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return run
