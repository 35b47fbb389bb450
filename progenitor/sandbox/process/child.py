"""The process backend's child, from start to teardown: it is started in a session of its
own, watched (see ``capture``), and then stopped with everything it started, whatever
ended it: its exit, the wall clock, a cancel, or an exception in the caller."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Optional

from progenitor.errors import SandboxError
from progenitor.sandbox.base import Limits, LineCallback
from progenitor.sandbox.capture import Tail, drain, exited, watch
from progenitor.sandbox.outcome import Outcome
from progenitor.sandbox.process.cgroup import Group, Usage
from progenitor.sandbox.process.isolation import ChildSetup, make_preexec

__all__ = ["launch"]

DRAIN_SECONDS = 2.0
"""After the command ends, how long its pipes may still deliver output."""
REAPER_SECONDS = 3.0
"""How long the plain mode's reaper gets to kill what the command left and exit."""


def launch(argv: list[str], env: dict[str, str], cwd: Path, setup: ChildSetup, mode: str, limits: Limits,
           on_line: Optional[LineCallback], cancel: Optional[threading.Event], group: Optional[Group] = None) -> Outcome:
    """Start ``argv`` and see it through: output, exit, timeout or cancel, and teardown; with
    ``group`` (the control group ``setup`` joins), everything left in it is killed at the end
    and its counters are the outcome's CPU time, memory peak and OOM kills."""
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True, close_fds=True,
            preexec_fn=make_preexec(setup),
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise SandboxError(f"could not start the sandboxed command: {exc}") from exc
    out = Tail("stdout", limits.output_bytes, on_line)
    err = Tail("stderr", limits.output_bytes, on_line)
    streams = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
    try:
        ended_by = watch(proc.pid, streams, started + limits.wall_time, cancel)
    except BaseException:
        out.on_line = err.on_line = None  # a failing callback (or Ctrl-C) must not stop the teardown
        raise
    finally:
        try:
            _kill(proc.pid, mode)
            drain(streams, time.monotonic() + DRAIN_SECONDS)
        finally:
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)  # we reaped it: keep Popen from trying
            for pipe in (proc.stdout, proc.stderr):
                pipe.close()
            counted = group.finish() if group is not None else Usage()
    cpu = usage.ru_utime + usage.ru_stime
    return Outcome(
        ended_by=ended_by, returncode=proc.returncode, duration=time.monotonic() - started,
        cpu_seconds=max(cpu, counted.cpu_seconds or 0.0), stdout=out.text(), stderr=err.text(),
        truncated=out.truncated or err.truncated, oom_killed=counted.oom_kills > 0,
        forks_refused=counted.forks_refused > 0, memory_peak=counted.memory_peak,
    )


def _kill(pid: int, mode: str) -> None:
    """Stop the command and everything it started, and let ``pid`` exit once all is gone.

    Plain: SIGTERM asks the reaper (``pid``) to kill everything it collected, then exit.
    bwrap: SIGKILL to the reaper, the namespace's init: the kernel kills every process of
    the namespace before the init is gone and bwrap, which reaps it, exits. SIGKILL to the
    whole group is the last resort (bwrap still starting; a non-root command that killed
    its plain reaper): bwrap's parent-death signal then ends the namespace."""
    if not exited(pid):
        targets = [pid] if mode != "bwrap" else _children(pid)
        for target in targets:
            _signal(target, signal.SIGTERM if mode != "bwrap" else signal.SIGKILL)
        until = time.monotonic() + (REAPER_SECONDS if targets else 0)
        while not exited(pid) and time.monotonic() < until:
            time.sleep(0.01)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(child) for child in f.read().split()]
    except OSError:  # a kernel without CONFIG_PROC_CHILDREN: look at every process's parent
        found = []
        for entry in os.scandir("/proc"):
            try:
                with open(os.path.join(entry.path, "stat"), "rb") as f:
                    if int(f.read().rsplit(b")", 1)[1].split()[1]) == pid:
                        found.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
        return found


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)
