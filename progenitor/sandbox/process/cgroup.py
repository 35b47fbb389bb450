"""One sandbox's control group: the limits the kernel holds, and what it counted.

A group is made for every run of the process backend, in each hierarchy of ``cgroup_tree``
that holds one of its controllers; the command's first process joins all of them before it
becomes the command (``procs_files``), so that everything it starts is inside. The kernel
then holds:

- memory: every page the group's processes touch, anonymous or shared (``mmap`` with
  ``MAP_SHARED``, a ``memfd``, ``/dev/zero``, SysV shm) and the tmpfs pages they write
  (``/tmp``, ``/dev/shm``, the job's quota tmpfs); no swap. Past it, the kernel's OOM killer
  stops a process of the group, and counts it (``oom_kills``).
- CPU: a CFS quota of ``cpus`` cores per 100 ms period, however many processes share it.
- processes: ``pids.max`` tasks (processes and threads); the refused forks are counted.

In v2 the limits sit on the group and the processes in a leaf below it, so that a command
that mounts a cgroup filesystem of its own (in a namespace rooted at its leaf) never sees
the files that hold its limits. ``finish`` kills whatever is still in the group and reads
the counters; ``remove`` deletes the directories. A group whose maker died is removed by the
next one made on the machine (``sweep``).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import time
from pathlib import Path
from typing import Optional

from pydantic import BaseModel

from progenitor.sandbox.process.cgroup_tree import ACCOUNTING, Layout, Place, ensure_base

__all__ = ["CPU_PERIOD_US", "Group", "Usage", "sweep"]

CPU_PERIOD_US = 100_000
"""The CFS period (the kernel's default): ``cpus`` cores are ``cpus * period`` of CPU time in each."""
MIN_QUOTA_US = 1_000
"""The smallest quota the kernel takes."""
LEAF = "run"
"""v2: the leaf below a group's limits where its processes are."""
KILL_SECONDS = 5.0
"""How long ``finish`` keeps killing what is left (a process forking as it is killed)."""
NAME = re.compile(r"^(\d+)-[0-9a-f]{8}$")


class Usage(BaseModel):
    """What the kernel counted for one group."""

    cpu_seconds: Optional[float] = None
    memory_peak: Optional[int] = None
    """Bytes: the group's high-water mark (None where the kernel keeps none: v2 before 5.19)."""
    oom_kills: int = 0
    """Processes of the group the kernel's OOM killer stopped."""
    forks_refused: int = 0
    """Forks the kernel refused at the process limit."""


class Group:
    """A sandbox's group in every hierarchy of ``layout``, made with its limits set."""

    def __init__(self, layout: Layout, memory_bytes: Optional[int], cpus: float, processes: int):
        sweep(layout)
        self.name = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.dirs: dict[str, Path] = {}
        self.versions: dict[str, int] = {}
        try:
            for controller, place in sorted(layout.places.items()):
                path = place.base / self.name
                if path not in self.dirs.values():
                    _make(place, path)
                self.dirs[controller], self.versions[controller] = path, place.version
            self._limit(memory_bytes, cpus, processes)
        except BaseException:
            self.remove()
            raise

    # ------------------------------------------------------------------ limits

    def _limit(self, memory_bytes: Optional[int], cpus: float, processes: int) -> None:
        if "memory" in self.dirs and memory_bytes is not None:
            if self.versions["memory"] == 1:
                _write(self.dirs["memory"] / "memory.limit_in_bytes", memory_bytes)
                _write(self.dirs["memory"] / "memory.memsw.limit_in_bytes", memory_bytes, optional=True)
            else:
                _write(self.dirs["memory"] / "memory.max", memory_bytes)
                _write(self.dirs["memory"] / "memory.swap.max", 0, optional=True)
        if "cpu" in self.dirs:
            quota = max(MIN_QUOTA_US, round(cpus * CPU_PERIOD_US))
            if self.versions["cpu"] == 1:
                _write(self.dirs["cpu"] / "cpu.cfs_period_us", CPU_PERIOD_US)
                _write(self.dirs["cpu"] / "cpu.cfs_quota_us", quota)
            else:
                _write(self.dirs["cpu"] / "cpu.max", f"{quota} {CPU_PERIOD_US}")
        if "pids" in self.dirs:
            _write(self.dirs["pids"] / "pids.max", processes)

    @property
    def procs_files(self) -> list[str]:
        """The files the command's first process writes its pid to, to join the group everywhere."""
        files = []
        for controller, path in self.dirs.items():
            target = path / LEAF if self.versions[controller] == 2 else path
            files.append(str(target / "cgroup.procs"))
        return list(dict.fromkeys(files))

    # ------------------------------------------------------------------ the end

    def finish(self) -> Usage:
        """Kill whatever is still in the group, then read what the kernel counted."""
        self.kill()
        return self.usage()

    def usage(self) -> Usage:
        found = Usage()
        if ACCOUNTING in self.dirs:
            found.cpu_seconds = _cpu_seconds(self.dirs[ACCOUNTING], self.versions[ACCOUNTING])
        if "memory" in self.dirs:
            path, v1 = self.dirs["memory"], self.versions["memory"] == 1
            peak = _read(path / ("memory.max_usage_in_bytes" if v1 else "memory.peak"))
            found.memory_peak = int(peak) if peak and peak.strip().isdigit() else None
            found.oom_kills = _key(path / ("memory.oom_control" if v1 else "memory.events"), "oom_kill")
        if "pids" in self.dirs:
            found.forks_refused = _key(self.dirs["pids"] / "pids.events", "max")
        return found

    def pids(self) -> list[int]:
        """Every process in the group and any group below it (one hierarchy is enough: every
        one of them holds the same processes)."""
        return [pid for group in _below(next(iter(self.dirs.values()))) for pid in _procs(group)] if self.dirs else []

    def kill(self) -> None:
        """SIGKILL every process of the group, until none is left (or ``KILL_SECONDS`` pass)."""
        v2 = [path for c, path in self.dirs.items() if self.versions[c] == 2]
        if v2 and (v2[0] / "cgroup.kill").exists():
            with contextlib.suppress(OSError):
                _write(v2[0] / "cgroup.kill", 1)
        until = time.monotonic() + KILL_SECONDS
        while time.monotonic() < until:
            left = self.pids()
            if not left:
                return
            for pid in left:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)

    def remove(self) -> None:
        """Delete the group's directories (a moment's retry while killed processes exit)."""
        for path in dict.fromkeys(self.dirs.values()):
            if _rmdir_group(path):
                with contextlib.suppress(OSError):  # the last group out removes the base (others may be in it)
                    path.parent.rmdir()


def sweep(layout: Layout) -> int:
    """Kill and remove the groups of makers that are gone (a driver killed outright); how many."""
    swept = 0
    for base in dict.fromkeys(place.base for place in layout.places.values()):
        try:
            names = os.listdir(base)
        except OSError:
            continue
        for name in names:
            match = NAME.match(name)
            if match is None or _alive(int(match.group(1))):
                continue
            path = base / name
            for pid in [pid for group in _below(path) for pid in _procs(group)]:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            swept += _rmdir_group(path)
    return swept


def _make(place: Place, path: Path) -> None:
    """Make a sandbox's group (v2: with its leaf), and the base when the last group took it away."""
    for attempt in range(3):
        try:
            ensure_base(place)
            path.mkdir()
            break
        except FileNotFoundError:  # another sandbox removed the base between the two calls
            if attempt == 2:
                raise
    if place.version == 2:
        (path / LEAF).mkdir()


def _rmdir_group(path: Path) -> int:
    """Remove a group and any group below it, deepest first; 1 when it is gone."""
    until = time.monotonic() + 2.0
    for target in reversed(_below(path)):
        while True:
            try:
                target.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                if time.monotonic() > until:
                    return 0
                time.sleep(0.02)
    return 1


def _below(path: Path) -> list[Path]:
    """``path`` and every group below it, parents first (a command may make groups of its own)."""
    order, stack = [], [path]
    while stack:
        here = stack.pop()
        order.append(here)
        with contextlib.suppress(OSError):
            stack += [Path(e.path) for e in os.scandir(here) if e.is_dir(follow_symlinks=False)]
    return order


def _procs(group: Path) -> list[int]:
    return [int(pid) for pid in (_read(group / "cgroup.procs") or "").split()]


def _cpu_seconds(path: Path, version: int) -> Optional[float]:
    if version == 1:
        text = _read(path / "cpuacct.usage")
        return int(text) / 1e9 if text and text.strip().isdigit() else None
    usec = _key(path / "cpu.stat", "usage_usec", default=-1)
    return usec / 1e6 if usec >= 0 else None


def _key(path: Path, key: str, default: int = 0) -> int:
    """The value of ``key`` in a flat-keyed file (``oom_kill 2``)."""
    for line in (_read(path) or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key and parts[1].isdigit():
            return int(parts[1])
    return default


def _read(path: Path) -> Optional[str]:
    try:
        return path.read_text()
    except OSError:
        return None


def _write(path: Path, value: object, optional: bool = False) -> None:
    if optional and not path.exists():
        return
    path.write_text(str(value))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True
    except OSError:
        return False
    return True
