"""The limits probe: what ``progenitor doctor`` runs to say which of a sandbox's resource limits
hold here, measured, not inferred from what the backend says of itself.

A probe candidate runs through the real backend under small limits and does what an attacker
would: two busy processes for two seconds under half a core (their CPU time measured by the
probe, which reaps them), forks until the kernel refuses under a limit of 32 processes, then
writes a ``memfd`` (shared memory, which per-process rlimits never see) in 8 MiB steps
towards four times its 128 MiB limit, saying how much it holds after each. A limit holds
when what was measured stays within 10 % of it, and the memory writer ends as ``oom``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from pydantic import BaseModel

from progenitor.errors import ProgenitorError

__all__ = ["CPUS", "MEMORY_BYTES", "PROCESSES", "LimitsReport", "probe_limits", "read_probe"]

MEMORY_BYTES = 128 << 20
CPUS = 0.5
PROCESSES = 32
SLACK = 1.10
"""A measured figure may pass its limit by this factor and the limit still counts as held."""

PROBE = r'''
import os, sys, time
phase, limit = sys.argv[1], int(sys.argv[2])
if phase == "cpu":
    started, kids = time.monotonic(), []
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            while time.monotonic() - started < 2.0:
                pass
            os._exit(0)
        kids.append(pid)
    used = 0.0
    for pid in kids:
        usage = os.wait4(pid, 0)[2]
        used += usage.ru_utime + usage.ru_stime
    print("probe cpu %.3f" % (used / (time.monotonic() - started)), flush=True)
elif phase == "processes":
    kids = []
    try:
        while len(kids) < 4 * limit:
            pid = os.fork()
            if pid == 0:
                time.sleep(10)
                os._exit(0)
            kids.append(pid)
    except OSError:
        pass
    print("probe processes %d" % len(kids), flush=True)
    for pid in kids:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
else:
    fd, chunk, held = os.memfd_create("probe"), b"x" * (8 << 20), 0
    while held < 4 * limit:
        os.write(fd, chunk)
        held += len(chunk)
        print("probe memory %d" % held, flush=True)
'''


class LimitsReport(BaseModel):
    ok: bool
    detail: str
    """One line: each limit, what was measured against it, held or NOT held."""


def probe_limits(backend: str, backend_options: dict) -> LimitsReport:
    """Run the probe through ``backend`` and say which limits held."""
    from progenitor.sandbox import get_sandbox
    from progenitor.sandbox.base import Limits, SandboxSpec

    base = Path(tempfile.mkdtemp(prefix="progenitor-limits-"))
    try:
        base.chmod(0o755)
        tree, out = base / "tree", base / "out"
        tree.mkdir()
        out.mkdir()
        (tree / "probe.py").write_text(PROBE)
        python = "python3" if backend == "docker" else "python"
        command = " && ".join(f"{python} probe.py {phase} {limit}" for phase, limit in
                              (("cpu", 0), ("processes", PROCESSES), ("memory", MEMORY_BYTES)))
        limits = Limits(wall_time=60, cpus=CPUS, memory_bytes=MEMORY_BYTES, processes=PROCESSES)
        options = {**backend_options, "allow_unenforced_limits": True} if backend != "docker" else backend_options
        try:
            result = get_sandbox(backend, **options).run(SandboxSpec(command=command, tree=tree, out=out, limits=limits))
        except ProgenitorError as exc:
            return LimitsReport(ok=False, detail=f"the limits probe did not run: {exc}")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return read_probe(result)


def read_probe(result) -> LimitsReport:
    """The report, from the probe's lines and how its run ended."""
    seen: dict[str, float] = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "probe":
            seen[parts[1]] = float(parts[2])
    words, ok = [], True
    if "cpu" in seen:
        held = seen["cpu"] <= CPUS * SLACK
        words.append(f"cpus {'held' if held else 'NOT held'} (2 busy processes used {seen['cpu']:.2f} of {CPUS:g} cores)")
        ok &= held
    if "processes" in seen:
        held = seen["processes"] < PROCESSES
        words.append(f"processes {'held' if held else 'NOT held'} ({seen['processes']:.0f} forks under a limit of "
                     f"{PROCESSES})")
        ok &= held
    if "memory" in seen:
        peak = seen["memory"]
        held = result.status == "oom" and peak <= MEMORY_BYTES * SLACK
        words.append(f"memory {'held' if held else 'NOT held'} (a memfd reached {peak / (1 << 20):.0f} MiB under "
                     f"{MEMORY_BYTES >> 20} MiB, then {result.status}: {result.reason or 'exit 0'})")
        ok &= held
    if len(seen) < 3:
        return LimitsReport(ok=False, detail=f"the limits probe stopped early ({result.status}: {result.reason}); "
                                             + "; ".join(words))
    return LimitsReport(ok=ok, detail="; ".join(words))
