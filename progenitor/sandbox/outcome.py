"""What happened to a sandboxed command, in one status and one sentence.

Both backends reduce a finished command to an ``Outcome`` (how it ended, its exit code,
its output tails, and what the kernel counted) and let ``judge`` turn that into the
``SandboxResult`` a user reads, so that the same failure reads the same whichever backend
ran it.

A status is the kernel's word or the host's, never the candidate's: ``oom`` when the
kernel's OOM killer stopped a process of the sandbox (its control group's counter, Docker's
``OOMKilled``), ``timeout`` and ``killed`` when the host's clock or cancel ended it. What the
command printed is shown in the reason, and decides nothing. (``disk`` is the job's quota
accounting, in ``compute``.)
"""

from __future__ import annotations

import signal
from typing import Literal, Optional

from pydantic import BaseModel

from progenitor.sandbox.base import Limits, SandboxResult

__all__ = ["Outcome", "judge", "limit_note", "size"]


class Outcome(BaseModel):
    """What the backend saw, before it is judged."""

    ended_by: Literal["exit", "timeout", "cancel"]
    returncode: int
    """As from ``subprocess``: negative for a signal."""
    duration: float
    cpu_seconds: float
    stdout: str
    stderr: str
    truncated: bool
    oom_killed: bool = False
    """The kernel's OOM killer stopped a process of the sandbox (the kernel's own count)."""
    forks_refused: bool = False
    """The kernel refused a fork at the process limit (the pids controller's own count)."""
    memory_peak: Optional[int] = None
    """Bytes: the sandbox's high-water mark as its control group counted it (None: unknown)."""


def judge(outcome: Outcome, limits: Limits) -> SandboxResult:
    """The status, exit code and one-sentence reason of a finished command."""
    code = outcome.returncode if outcome.returncode >= 0 else 128 - outcome.returncode
    last = _last_line(outcome.stderr)
    forks = f" (it hit the limit of {limits.processes} processes)" if outcome.forks_refused else ""
    status, exit_code, reason = "failed", code, ""
    if outcome.ended_by == "timeout":
        status, exit_code = "timeout", None
        reason = f"killed after {limits.wall_time:g} s: wall-clock timeout{forks}"
    elif outcome.ended_by == "cancel":
        status, exit_code, reason = "killed", None, f"killed after {outcome.duration:.1f} s: cancelled"
    elif code == 0:
        status = "ok"
    elif outcome.oom_killed:
        status = "oom"
        reason = f"out of memory{limit_note(limits)}: the kernel's OOM killer stopped it (exit code {code})"
    elif 128 < code < 128 + signal.NSIG:
        reason = f"killed by {_signal_name(code - 128)} (exit code {code})" + (f": {last}" if last else "") + forks
    else:
        reason = f"exit code {code}" + (f": {last}" if last else "") + forks
    return SandboxResult(
        status=status, exit_code=exit_code, duration=round(outcome.duration, 3),
        cpu_seconds=round(outcome.cpu_seconds, 3), stdout=outcome.stdout, stderr=outcome.stderr,
        truncated=outcome.truncated, reason=reason, memory_peak=outcome.memory_peak,
    )


def _signal_name(number: int) -> str:
    """``SIGKILL`` for 9; ``signal 40`` for a number Python has no name for (the real-time
    signals between SIGRTMIN and SIGRTMAX, 32 and 33): the exit code is the candidate's choice."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def limit_note(limits: Limits) -> str:
    """`` (limit 2 GiB)`` after "out of memory", or nothing when memory was not limited."""
    return f" (limit {size(limits.memory_bytes)})" if limits.memory_bytes else ""


def size(n: Optional[int]) -> str:
    """A byte count as a person reads it: ``512 MiB``."""
    if n is None:
        return "none"
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n} B"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text[-4096:].splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
