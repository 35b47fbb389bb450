"""The operating-system side of the process sandbox: what this machine allows, the few system
calls a child makes before it becomes the candidate's command, and the uids commands run as.

Three ways to run a command, strongest first:

- ``bwrap``: bubblewrap builds a *whitelist* view (see ``bwrap``). Network, PID, IPC and UTS
  namespaces are private. When we are root, bubblewrap runs as root (so it can bind any
  path) and the reaper (see ``reaper``) drops the command to an unprivileged uid inside, so
  that the command owns nothing on the host.
- ``unshare`` (root only, where bubblewrap is missing or unusable): the reaper builds the same
  whitelist view itself, in private mount, IPC and UTS namespaces (see ``mountns``), then
  drops the command to the unprivileged uid.
- ``none``: a plain child in its own session, under the same reaper, which drops it to the
  unprivileged uid (when we are root), collects everything it starts and kills what is left
  when it ends; with a network namespace of its own where the kernel allows one. It sees the
  host's files: a run refuses it unless the user opts in (see ``sandbox.seal``).

All three run in a control group of their own where the machine gives one (see ``limits``
and ``cgroup``), which holds memory, CPU and processes; rlimits (processes, file size, no
core files; memory only where no group holds it) and a parent-death signal come on top.
When we are root, each run gets a fresh uid of its own, so that one candidate's processes
never count against, nor can touch, another's.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import resource
import secrets
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, Optional

from pydantic import BaseModel, ConfigDict

from progenitor.sandbox.access import is_root
from progenitor.sandbox.process.bwrap import View, bwrap_argv

__all__ = ["ChildSetup", "count_tasks", "fresh_uid", "make_preexec", "nproc_limit", "probe_bwrap", "probe_netns",
           "probe_unshare"]

_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_PROBE_TIMEOUT = 10.0


# --------------------------------------------------------------------------- probes


@functools.lru_cache(maxsize=None)
def probe_bwrap() -> tuple[bool, str]:
    """Whether bubblewrap can build the view we use (namespaces, tmpfs sizes, ...) here; (works, why)."""
    exe = shutil.which("bwrap")
    if exe is None:
        return False, "bwrap not found"
    try:
        with tempfile.TemporaryDirectory(prefix="progenitor-probe-") as tmp:
            argv = bwrap_argv(View(tree=Path(tmp), out=Path(tmp), tmp_bytes=1 << 20), ["/bin/true"])
            done = subprocess.run([exe, *argv[1:]], capture_output=True, text=True, timeout=_PROBE_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"bwrap failed to start ({exc})"
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return False, f"bwrap cannot make namespaces here ({lines[-1] if lines else done.returncode})"
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()
    return True, version or "bubblewrap"


@functools.lru_cache(maxsize=None)
def probe_unshare() -> tuple[bool, str]:
    """Whether the reaper can build the whitelist view itself here (root, mount namespaces); (works, why)."""
    from progenitor.sandbox.process.mountns import view_plan
    from progenitor.sandbox.process.reaper import reaper_argv

    if not is_root():
        return False, "not root"
    try:
        with tempfile.TemporaryDirectory(prefix="progenitor-probe-") as tmp:
            root = Path(tmp) / "root"
            root.mkdir()
            plan = view_plan(View(tree=Path(tmp), out=Path(tmp), tmp_bytes=1 << 20), root)
            done = subprocess.run(reaper_argv("test -d /proc/self/fd", None, None, plan),
                                  capture_output=True, text=True, timeout=_PROBE_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"the view could not be built ({exc})"
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return False, f"no mount namespace here ({lines[-1] if lines else done.returncode})"
    return True, "mount namespace"


@functools.lru_cache(maxsize=None)
def probe_netns() -> bool:
    """Whether a plain child can get a network namespace of its own (root, or user namespaces)."""
    try:
        done = subprocess.run(["/bin/true"], preexec_fn=_unshare_net, timeout=_PROBE_TIMEOUT)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _unshare_net() -> None:
    """In a child: leave the host network. As non-root this needs a user namespace first,
    mapping our own ids onto themselves so that files we create keep their owner."""
    if is_root():
        _check(_LIBC.unshare(_CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        return
    uid, gid = os.getuid(), os.getgid()
    _check(_LIBC.unshare(_CLONE_NEWUSER | _CLONE_NEWNET), "unshare(CLONE_NEWUSER|CLONE_NEWNET)")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        fd = os.open(f"/proc/self/{name}", os.O_WRONLY)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


# --------------------------------------------------------------------------- the child's setup


class ChildSetup(BaseModel):
    """What the launched process (bwrap, or the plain mode's reaper) does between fork and exec."""

    model_config = ConfigDict(extra="forbid")

    memory_bytes: Optional[int] = None
    """RLIMIT_DATA, where no control group holds the memory: heap and private mappings only.
    Not RLIMIT_AS, which counts address space that libraries merely reserve and so breaks
    imports (PyTorch's) long before memory is used."""
    cgroup_procs: list[str] = []
    """The ``cgroup.procs`` files of the command's control group: the child joins it before
    anything else, so that all it starts is inside."""
    processes: Optional[int] = None
    """RLIMIT_NPROC: counted per uid, so it only bites once the command is not root."""
    unshare_net: bool = False
    """Leave the host network (plain and unshare modes; bwrap does its own)."""
    file_bytes: Optional[int] = None
    """RLIMIT_FSIZE: no file the command writes grows past this (its disk quota)."""


def make_preexec(setup: ChildSetup) -> Callable[[], None]:
    """A ``preexec_fn`` doing ``setup``. Runs in the forked child of a possibly threaded
    parent, so it makes plain system calls only and allocates as little as it can."""
    parent = os.getpid()
    limits = [(resource.RLIMIT_CORE, 0)]
    if setup.memory_bytes is not None:
        limits.append((resource.RLIMIT_DATA, setup.memory_bytes))
    if setup.processes is not None:
        limits.append((resource.RLIMIT_NPROC, setup.processes))
    if setup.file_bytes is not None:
        limits.append((resource.RLIMIT_FSIZE, setup.file_bytes))

    pid_files = [path.encode() for path in setup.cgroup_procs]

    def preexec() -> None:
        for path in pid_files:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, str(os.getpid()).encode())
            finally:
                os.close(fd)
        for which, value in limits:
            resource.setrlimit(which, (value, value))
        if setup.unshare_net:
            _unshare_net()
        _check(_LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")
        if os.getppid() != parent:  # the driver died before we could ask to follow it
            os._exit(137)

    return preexec


# --------------------------------------------------------------------------- uids


UID_BASE, UID_SPAN = 0x71000000, 0x0E000000
"""Where fresh sandbox uids are drawn from: above the ranges systemd gives to users, dynamic
users and containers, below 2**31 (where signedness bugs live)."""


def fresh_uid() -> int:
    """An unused uid for one run: its RLIMIT_NPROC then counts this run's processes only, and
    no other sandbox's files are its own."""
    while True:
        uid = UID_BASE + secrets.randbelow(UID_SPAN)
        if count_tasks(uid) == 0:
            return uid


def nproc_limit(processes: int) -> int:
    """RLIMIT_NPROC for a run. As root the command gets a uid of its own, whose count starts
    at zero. Otherwise it shares our uid, and the limit counts every task of ours (user
    namespaces do not reset it): leave room for the ones already running."""
    return processes if is_root() else processes + count_tasks(os.getuid())


def count_tasks(uid: int) -> int:
    """Threads and processes of ``uid`` on this machine (what RLIMIT_NPROC counts)."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if os.stat(entry.path).st_uid == uid:
                total += len(os.listdir(os.path.join(entry.path, "task")))
        except OSError:
            continue
    return total

