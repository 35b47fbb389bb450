"""Which resource limits the process backend holds on this machine, and how.

With a control group (``cgroup``) the kernel holds all three, as it does for a Docker
container: memory (shared memory and tmpfs counted), a CPU quota and a process count. Without
one, what is left is per-process rlimits, which do not hold: ``RLIMIT_DATA`` misses shared
mappings, memfds and tmpfs files (each of which held 1.5 GiB under a 256 MiB limit), nothing
caps CPU (``cpus`` only sets thread-count variables), and ``RLIMIT_NPROC`` counts every
process of the uid. A limit the kernel does not hold is ``not_held``, and a run refuses it
unless the user opts in (``sandbox.enforce``).

A group's limits hold only while the command cannot write its group's files: as root the
files are root's and the command runs as another uid; without root (a delegated v2 subtree)
they are ours, so only a view that hides them (bubblewrap's, with the limits one level above
the command's own group) keeps them out of reach; the plain child sees them.
"""

from __future__ import annotations

from typing import Optional

from progenitor.sandbox.access import is_root
from progenitor.sandbox.base import Enforcement, Limits
from progenitor.sandbox.process.cgroup import Group
from progenitor.sandbox.process.cgroup_tree import Layout, layout

__all__ = ["enforcement", "make_group"]

_CONTROLLER = {"memory": "memory", "cpus": "cpu", "processes": "pids"}
_HOW = {"memory": "memory controller (heap, shared memory and tmpfs counted)",
        "cpus": "CPU quota (CFS)", "processes": "pids controller"}
_INSTEAD = {"memory": "RLIMIT_DATA only, which misses shared memory, memfds and tmpfs",
            "cpus": "nothing but thread-count variables",
            "processes": "RLIMIT_NPROC, counted over every process of this uid"}


def enforcement(mode: str) -> Enforcement:
    """What the kernel holds here for a command run in ``mode`` (bwrap, unshare or none)."""
    tree = layout()
    reachable = mode == "none" and not is_root()
    found = Enforcement()
    for limit, controller in _CONTROLLER.items():
        place = tree.places.get(controller)
        if place is not None and not reachable:
            found.held[limit] = f"cgroup v{place.version} {_HOW[limit]}"
        elif limit == "processes" and is_root():
            found.held[limit] = "RLIMIT_NPROC on a uid of its own"
        elif place is not None:
            found.not_held[limit] = ("the plain child runs as your uid and could rewrite its own group's limits; "
                                     f"{_INSTEAD[limit]} is certain")
        else:
            found.not_held[limit] = f"{tree.missing.get(controller, 'no cgroup')}; {_INSTEAD[limit]}"
    return found


def make_group(limits: Limits, tree: Optional[Layout] = None) -> Optional[Group]:
    """The command's control group, with every limit this machine's cgroups can hold; None
    when there is no cgroup to make here (the rlimits are then all there is)."""
    tree = tree or layout()
    if not any(c in tree.places for c in _CONTROLLER.values()):
        return None
    return Group(tree, limits.memory_bytes, limits.cpus, limits.processes)
