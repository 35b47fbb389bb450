"""Where this machine's control groups are, and where the process backend may make its own.

Linux mounts each controller either in a v1 hierarchy of its own (``/sys/fs/cgroup/memory``)
or in the single v2 hierarchy, and a machine may mix the two (v1 controllers beside an empty
v2 tree, as systemd's "hybrid" layout and many CI machines have). So each controller the
sandbox needs is looked up where it is mounted:

- v1: the group this process is in, in that controller's hierarchy, gets a ``progenitor``
  directory under it, so that every sandbox stays inside whatever limits were put on us. The
  v1 hierarchies belong to root: without root there is no v1 group to make.
- v2: one ``progenitor`` directory for every controller, with ``memory``, ``cpu`` and
  ``pids`` enabled for its children. A process may sit only in a leaf of a v2 tree, so it
  goes, in this order: under a ``progenitor-driver`` leaf we (or the process that started
  us) moved into before; under our own group when we are alone in it and may write to it (a
  delegated subtree, e.g. ``systemd-run --user --scope -p Delegate=yes``: we move ourselves
  into its ``progenitor-driver`` leaf first); as root, at the top of the hierarchy (as
  Docker's own cgroupfs driver does).

``layout()`` says, per controller, where groups are made or why none can be; ``group``
makes them.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel

from progenitor.sandbox.access import is_root

__all__ = ["ACCOUNTING", "BASE_NAME", "DRIVER_LEAF", "LIMITED", "Layout", "Place", "ensure_base", "inside", "layout",
           "parse_groups", "parse_mounts"]

BASE_NAME = "progenitor"
"""The directory every sandbox's group is made in."""
DRIVER_LEAF = "progenitor-driver"
"""The v2 leaf a driver moves itself into so that its own group may have children with controllers."""
LIMITED = ("memory", "cpu", "pids")
"""The controllers that hold the limits: memory (all of it: heap, shared memory, tmpfs), CPU
quota, process count."""
ACCOUNTING = "cpuacct"
"""v1's CPU-time counter (v2 counts CPU time in every group without a controller)."""


class Place(BaseModel):
    """Where one controller's sandbox groups are made."""

    version: Literal[1, 2]
    base: Path
    """The ``progenitor`` directory: each sandbox's group is a directory in it."""


class Layout(BaseModel):
    """Every controller the sandbox uses: where its groups are made, or why they cannot be."""

    places: dict[str, Place] = {}
    missing: dict[str, str] = {}
    """Controller -> one phrase saying why no group of it can be made here."""

    def words(self) -> str:
        """``cgroup v1 (memory, cpu, pids)`` or ``cgroup v2 (...)``, or both for a mixed machine."""
        by: dict[int, list[str]] = {}
        for name in LIMITED:
            if name in self.places:
                by.setdefault(self.places[name].version, []).append(name)
        return " and ".join(f"cgroup v{v} ({', '.join(names)})" for v, names in sorted(by.items())) or "no cgroup"


@functools.lru_cache(maxsize=None)
def layout() -> Layout:
    """This machine's layout, found once per process (a v2 driver leaf, once made, stays)."""
    mounts = _mounts()
    ours = _own_groups()
    found = Layout()
    v1 = {name: m for m in mounts if m[0] == "cgroup" for name in m[3] if name in (*LIMITED, ACCOUNTING)}
    for name, mount in v1.items():
        _place(found, name, 1, inside(mount, ours.get(name)))
    rest = [name for name in LIMITED if name not in v1]
    v2 = next((m for m in mounts if m[0] == "cgroup2"), None)
    if rest and v2 is None:
        for name in rest:
            found.missing[name] = f"the {name} controller is not mounted"
        return found
    if v2 is not None and (rest or ACCOUNTING not in v1):
        parent, why = _v2_parent(v2, ours.get(""), rest)
        available = _controllers(parent) if parent is not None else set()
        for name in rest:
            if parent is None or name not in available:
                found.missing[name] = why or f"the {name} controller is not enabled for {parent}"
            else:
                _place(found, name, 2, parent)
        if ACCOUNTING not in v1 and parent is not None:
            _place(found, ACCOUNTING, 2, parent)
    return found


def _place(found: Layout, name: str, version: Literal[1, 2], parent: Optional[Path]) -> None:
    """Record where ``name``'s groups go, once a base was made there (and removed again if it
    was new: groups make it as they need it, and the last one removes it)."""
    if parent is None:
        found.missing[name] = f"this process's {name} group is not visible"
        return
    place = Place(version=version, base=parent / BASE_NAME)
    existed = place.base.is_dir()
    try:
        ensure_base(place)
    except OSError as exc:
        found.missing[name] = f"cannot make groups in {place.base} ({exc.strerror or exc})"
        return
    if not existed:
        with contextlib.suppress(OSError):
            place.base.rmdir()
    found.places[name] = place


def ensure_base(place: Place) -> None:
    """Make the ``progenitor`` directory of ``place`` (v2: with the limit controllers on for its children)."""
    place.base.mkdir(exist_ok=True)
    if place.version == 2:
        _enable(place.base, [n for n in LIMITED if n in _controllers(place.base)])


# --------------------------------------------------------------------------- v2


def _v2_parent(mount: tuple, ours: Optional[str], wanted: list[str]) -> tuple[Optional[Path], str]:
    """The v2 group under which ``progenitor`` goes, with ``wanted`` enabled for its children."""
    here = inside(mount, ours)
    if here is None:
        return None, "this process's cgroup v2 group is not visible"
    candidates: list[Path] = []
    if here.name == DRIVER_LEAF:
        candidates.append(here.parent)
    elif ours == "/":
        candidates.append(here)
    elif _alone(here) and _moved_into_leaf(here):
        candidates.append(here)
    if is_root() and Path(mount[1]) not in candidates:
        candidates.append(Path(mount[1]))
    reasons = []
    for parent in candidates:
        try:
            _enable(parent, [w for w in wanted if w in _controllers(parent)])
            return parent, ""
        except OSError as exc:
            reasons.append(f"{parent}: {exc.strerror or exc}")
    if not candidates:
        return None, (f"this process's cgroup v2 group {ours} is not delegated to uid {os.geteuid()} "
                      "(run as root, or under systemd-run --user --scope -p Delegate=yes)")
    return None, "cannot enable controllers for children of " + "; ".join(reasons)


def _alone(group: Path) -> bool:
    """Whether this process is the only one in ``group`` and may write to it (a delegated subtree)."""
    try:
        pids = (group / "cgroup.procs").read_text().split()
    except OSError:
        return False
    return pids == [str(os.getpid())] and os.access(group / "cgroup.procs", os.W_OK) and os.access(group, os.W_OK)


def _moved_into_leaf(group: Path) -> bool:
    leaf = group / DRIVER_LEAF
    try:
        leaf.mkdir(exist_ok=True)
        (leaf / "cgroup.procs").write_text(str(os.getpid()))
    except OSError:
        return False
    return True


def _controllers(group: Path) -> set[str]:
    try:
        return set((group / "cgroup.controllers").read_text().split())
    except OSError:
        return set()


def _enable(group: Path, names: list[str]) -> None:
    """Enable ``names`` for the children of the v2 ``group`` (those already on are left alone)."""
    try:
        on = set((group / "cgroup.subtree_control").read_text().split())
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return  # a v1 hierarchy: nothing to enable
        raise
    todo = [n for n in names if n not in on]
    if todo:
        (group / "cgroup.subtree_control").write_text(" ".join(f"+{n}" for n in todo))


# --------------------------------------------------------------------------- /proc


def _mounts() -> list[tuple]:
    return parse_mounts(_read_proc("/proc/self/mountinfo"))


def _own_groups() -> dict[str, str]:
    return parse_groups(_read_proc("/proc/self/cgroup"))


def _read_proc(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def parse_mounts(mountinfo: str) -> list[tuple]:
    """(fstype, mount point, root inside the hierarchy, super options) of every cgroup mount
    in the text of ``/proc/<pid>/mountinfo``."""
    found = []
    for line in mountinfo.splitlines():
        head, _, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if len(fields) >= 5 and len(rest) >= 3 and rest[0] in ("cgroup", "cgroup2"):
            point = fields[4].replace("\\040", " ")
            found.append((rest[0], point, fields[3], tuple(rest[2].split(","))))
    return found


def parse_groups(text: str) -> dict[str, str]:
    """A process's group per controller ("" for v2), from the text of ``/proc/<pid>/cgroup``."""
    groups: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for name in parts[1].split(",") if parts[1] else [""]:
                groups[name] = parts[2]
    return groups


def inside(mount: tuple, group: Optional[str]) -> Optional[Path]:
    """The directory of ``group`` under ``mount``, or None when the mount does not show it
    (a mount of a subtree that our group is not in)."""
    if group is None:
        return None
    root, point = mount[2], Path(mount[1])
    if root != "/" and not (group == root or group.startswith(root.rstrip("/") + "/")):
        return None
    rel = group[len(root):] if root != "/" else group
    return point / rel.lstrip("/") if rel.strip("/") else point
