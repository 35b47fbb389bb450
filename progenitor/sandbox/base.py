"""The one interface every sandbox backend implements: ``Sandbox.run(spec) -> result``.

A spec names the command (a template: ``{tree}``, ``{data}`` and ``{out}`` are filled in
by the backend with the paths *as the sandboxed command sees them*), the candidate's own
copy of the tree (writable, the working directory), the read-only data directory, the
writable outputs directory, extra mounts, environment, limits and network (off by default).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable, Literal, Optional, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

LineCallback = Callable[[str, str], None]
"""Called with (stream, line) for each line the command prints, stream in {"stdout", "stderr"}."""


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    wall_time: float = Field(600.0, gt=0)
    """Seconds before the whole sandbox is killed."""
    cpus: float = Field(1.0, gt=0)
    """CPU cores; also sets OMP/MKL/torch thread counts inside."""
    memory_bytes: Optional[int] = None
    """Memory limit in bytes (None: unlimited)."""
    processes: int = 512
    """Most processes/threads (fork-bomb guard)."""
    gpus: list[str] = []
    """GPU device ids assigned to this sandbox (empty: no GPU)."""
    output_bytes: int = 1 << 20
    """Cap on captured stdout and on stderr, each; the tail is kept."""
    disk_bytes: Optional[int] = None
    """Disk quota of the tree and outputs (None: none). The backends cap any one file at it
    (RLIMIT_FSIZE, Docker's fsize ulimit); the whole is held by the job directory it runs in
    (``compute.jobdir``)."""


class Mount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: Path
    target: Optional[str] = None
    """Path inside the sandbox (backends that remap paths need it; default: same as source)."""
    read_only: bool = True


class SandboxSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    command: str
    """Shell command template, run by ``/bin/sh -c`` after ``{tree}``/``{data}``/``{out}`` are filled in."""
    tree: Path
    """The candidate's own copy of its tree: the working directory, writable (unless ``read_only_tree``)."""
    read_only_tree: bool = False
    """Mount the tree read-only (the scoring sandbox: the candidate's code runs, nothing it writes there stays)."""
    out: Path
    """Outputs directory, writable; what the candidate leaves here is collected."""
    data: Optional[Path] = None
    """Read-only directory of data the candidate may see (never holdout labels)."""
    mounts: list[Mount] = []
    env: dict[str, str] = {}
    limits: Limits = Limits()
    network: bool = False
    """Network access (off by default: candidates get none)."""
    labels: dict[str, str] = {}
    """Run / generation / candidate, for naming, sweeping and logs."""


Status = Literal["ok", "failed", "timeout", "oom", "disk", "killed"]


class SandboxResult(BaseModel):
    status: Status
    """ok: exit 0; failed: non-zero exit; timeout: wall time hit; oom: the kernel's OOM killer
    stopped a process of the sandbox at its memory limit; disk: the job's disk quota (bytes or
    files) reached, by the quota's own count; killed: cancelled. Never taken from what the
    command printed."""
    exit_code: Optional[int] = None
    duration: float = 0.0
    """Wall seconds."""
    cpu_seconds: float = 0.0
    """User + system CPU seconds of the command and its children, where the backend can tell."""
    memory_peak: Optional[int] = None
    """Bytes: the most memory the sandbox held at once (shared memory and tmpfs included), as
    the kernel counted it; None where the backend cannot tell."""
    stdout: str = ""
    """Tail of stdout, at most ``limits.output_bytes``."""
    stderr: str = ""
    truncated: bool = False
    """True if stdout or stderr was cut to its cap."""
    backend: str = ""
    isolation: list[str] = []
    """What isolation was in force, e.g. ["netns", "mountns", "rlimits", "uid"]."""
    reason: str = ""
    """One sentence for a user when status is not ok (and, once ``execute_job`` has packed the
    outputs, what was cut or dropped from them, whatever the status)."""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


LIMIT_NAMES = ("memory", "cpus", "processes")
"""The resource limits of a spec that a backend must hold (``Limits`` field names, as a task says them)."""


class Enforcement(BaseModel):
    """Which resource limits the kernel holds for a backend on this machine, and how."""

    held: dict[str, str] = {}
    """Limit (memory, cpus, processes) -> how it is held, in a few words."""
    not_held: dict[str, str] = {}
    """Limit -> why the kernel does not hold it here (what the backend does instead)."""

    def missing(self, limits: "Limits") -> dict[str, str]:
        """The limits of ``limits`` that are set and not held here (no memory limit: none to hold)."""
        wanted = [n for n in LIMIT_NAMES if n != "memory" or limits.memory_bytes is not None]
        return {n: self.not_held.get(n, "not known to be held") for n in wanted if n not in self.held}

    def refusal(self, backend: str, limits: "Limits", remedy: str) -> Optional[str]:
        """The one sentence a run (or a worker) refuses ``limits`` with here, or None when all are held."""
        missing = self.missing(limits)
        if not missing:
            return None
        names = " and ".join(f"'{name}'" for name in missing)
        return (f"the {backend} sandbox cannot enforce the {names} limit{'s' if len(missing) > 1 else ''} here "
                f"({next(iter(missing.values()))}): {remedy}; or pass --allow-unenforced-limits to run without")


class SandboxCheck(BaseModel):
    backend: str
    available: bool
    detail: str
    """One line for ``progenitor doctor``: what works, what does not and why."""
    isolation: list[str] = []
    limits: Enforcement = Enforcement()
    """Which of the resource limits the kernel holds here."""


@runtime_checkable
class Sandbox(Protocol):
    """Runs one command in isolation and reports what happened."""

    name: str

    def run(
        self,
        spec: SandboxSpec,
        on_line: Optional[LineCallback] = None,
        cancel: Optional[threading.Event] = None,
    ) -> SandboxResult:
        """Run ``spec`` to completion, timeout or ``cancel``; never leave a process or container behind."""
        ...

    def check(self) -> SandboxCheck: ...
