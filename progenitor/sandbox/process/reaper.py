"""The command's first process in the process backend: a small Python script that drops
the command to its uid, reaps everything it starts and kills what is left when it ends."""

from __future__ import annotations

import sys
from typing import Optional

__all__ = ["REAPER", "reaper_argv"]

REAPER = r"""
import ctypes, os, signal, sys
libc = ctypes.CDLL(None)
libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: the command's orphans become our children
libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: die with whoever started us
uid, gid, command = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
if len(sys.argv) > 4:  # the unshare mode: build the view (see mountns) while still root
    try:
        build_view(json.loads(sys.argv[4]))
    except BaseException as exc:
        os.write(2, ("sandbox: cannot build the view: %s\n" % exc).encode())
        os._exit(126)
main = os.fork()
if main == 0:
    try:
        if uid >= 0:
            for cap in range(64):  # PR_CAPBSET_DROP: no capability can ever come back
                libc.prctl(24, cap, 0, 0, 0)
            os.setgroups([]); os.setgid(gid); os.setuid(uid)
        libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # again: a uid change clears it
        os.execv("/bin/sh", ["/bin/sh", "-c", command])
    except BaseException as exc:
        os.write(2, ("sandbox: cannot start the command: %s\n" % exc).encode())
    os._exit(127)

def kill_children(*_):
    me = str(os.getpid()).encode()
    for name in os.listdir("/proc"):
        try:
            with open("/proc/%s/stat" % name, "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[1] == me:
                    os.kill(int(name), signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            pass

signal.signal(signal.SIGTERM, kill_children)
status = None
while True:
    try:
        pid, st = os.wait()
    except ChildProcessError:
        break
    if pid == main:
        status = st
    if status is not None:  # the command is done: nothing it started may outlive it
        kill_children()
code = os.waitstatus_to_exitcode(status)
os._exit(code if code >= 0 else 128 - code)
"""
"""The command's first process, in both modes: it makes itself the reaper of everything the
command starts (pid 1 of the bwrap namespace, or a subreaper in plain mode), so that a
grandchild that escapes into a session of its own still comes back to it, no zombie is left
to count against RLIMIT_NPROC, and the CPU time of every descendant adds up in the rusage
the driver reads when it reaps the sandbox. It kills whatever is left when the command ends
or on SIGTERM. It keeps the driver's uid (as root: out of the command's reach, and allowed
to receive the parent-death signal from bwrap, which runs as root too) and drops the
command to its own uid."""


def reaper_argv(command: str, uid: Optional[int], gid: Optional[int], plan: Optional[str] = None) -> list[str]:
    """The reaper's command line; ``uid``/``gid`` None: the command keeps ours. ``plan``: the
    unshare mode's view (``mountns.view_plan``), built by the reaper before the command starts."""
    from progenitor.sandbox.process.mountns import VIEW_CODE

    no = -1
    ids = [str(no if uid is None else uid), str(no if gid is None else gid)]
    if plan is None:
        return [sys.executable, "-I", "-S", "-c", REAPER, *ids, command]
    return [sys.executable, "-I", "-S", "-c", VIEW_CODE + REAPER, *ids, command, plan]
