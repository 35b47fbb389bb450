"""What happened to a sandboxed command, in one status and one sentence.

Both backends reduce a finished command to an ``Outcome`` (how it ended, its exit code,
its output tails) and let ``judge`` turn that into the ``SandboxResult`` a user reads, so
that the same failure reads the same whichever backend ran it.
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


MEMORY_SIGNS = ("memoryerror", "std::bad_alloc", "cannot allocate memory", "unable to allocate",
                "can't allocate memory", "out of memory")
"""What a process that hit RLIMIT_DATA prints last (Python, C++, numpy, PyTorch, the shell)."""
DISK_SIGNS = ("no space left on device", "file too large", "disk quota exceeded")
"""What a process refused a write by its quota prints last (ENOSPC from the job's tmpfs, EFBIG
from RLIMIT_FSIZE)."""
FORK_SIGNS = ("cannot fork", "can't fork", "can't start new thread", "fork: resource temporarily unavailable",
              "fork: retry")


def judge(outcome: Outcome, limits: Limits) -> SandboxResult:
    """The status, exit code and one-sentence reason of a finished command."""
    code = outcome.returncode if outcome.returncode >= 0 else 128 - outcome.returncode
    last = _last_line(outcome.stderr)
    forks = _fork_note(outcome.stderr, limits)
    status, exit_code, reason = "failed", code, ""
    if outcome.ended_by == "timeout":
        status, exit_code = "timeout", None
        reason = f"killed after {limits.wall_time:g} s: wall-clock timeout{forks}"
    elif outcome.ended_by == "cancel":
        status, exit_code, reason = "killed", None, f"killed after {outcome.duration:.1f} s: cancelled"
    elif code == 0:
        status = "ok"
    elif _out_of_memory(outcome.stderr):
        status, reason = "oom", f"out of memory{limit_note(limits)}: {last}"
    elif code == 128 + signal.SIGXFSZ or _last_lines_say(outcome.stderr, DISK_SIGNS):
        status = "disk"
        reason = f"disk quota{_disk_note(limits)}: " + (last or f"killed by SIGXFSZ (exit code {code})")
    elif code == 128 + signal.SIGKILL:
        status = "oom"
        reason = "killed by SIGKILL (exit code 137), most likely by the kernel's out-of-memory killer"
    elif 128 < code < 128 + signal.NSIG:
        name = signal.Signals(code - 128).name
        reason = f"killed by {name} (exit code {code})" + (f": {last}" if last else "") + forks
    else:
        reason = f"exit code {code}" + (f": {last}" if last else "") + forks
    return SandboxResult(
        status=status, exit_code=exit_code, duration=round(outcome.duration, 3),
        cpu_seconds=round(outcome.cpu_seconds, 3), stdout=outcome.stdout, stderr=outcome.stderr,
        truncated=outcome.truncated, reason=reason,
    )


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


def _out_of_memory(stderr: str) -> bool:
    return _last_lines_say(stderr, MEMORY_SIGNS)


def _last_lines_say(stderr: str, signs: tuple[str, ...]) -> bool:
    tail = "\n".join(stderr[-4096:].splitlines()[-5:]).lower()
    return any(sign in tail for sign in signs)


def _disk_note(limits: Limits) -> str:
    return f" ({size(limits.disk_bytes)}, train.resources.disk)" if limits.disk_bytes else ""


def _fork_note(stderr: str, limits: Limits) -> str:
    lowered = stderr.lower()
    if any(sign in lowered for sign in FORK_SIGNS):
        return f" (it hit the limit of {limits.processes} processes)"
    return ""
