"""The operating-system side of the process sandbox: what this machine allows, the bubblewrap
view, and the few system calls a child makes before it becomes the candidate's command.

Two ways to run a command, strongest first:

- ``bwrap``: bubblewrap builds a *whitelist* view. Only the system directories, the Python
  installation(s), a fresh ``/dev``, ``/proc`` and ``/tmp``, and the spec's own directories
  exist in it; the model repo, its ``.git``, held-out labels and the user's home are simply
  absent. Network, PID, IPC and UTS namespaces are private. When we are root, bubblewrap
  runs as root (so it can bind any path) and the reaper below drops the command to an
  unprivileged uid inside, so that the command owns nothing on the host.
- ``none``: a plain child in its own session, under a small reaper process that drops it to
  the unprivileged uid (when we are root), collects everything it starts and kills what
  is left when it ends; with a network namespace of its own where the kernel allows one.

Both keep rlimits (memory, processes, no core files) and a parent-death signal. When we are
root, each run gets a fresh uid of its own, so that one candidate's processes never count
against, nor can touch, another's.
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
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Optional

from pydantic import BaseModel, ConfigDict

SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
"""Bound read-only into the bwrap view (a symlink, like ``/lib -> usr/lib``, is recreated as one)."""

SYSTEM_PATH = ("/usr/local/bin", "/usr/bin", "/bin")
"""The system part of the sandbox's PATH."""

_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_PROBE_TIMEOUT = 10.0


def is_root() -> bool:
    return os.geteuid() == 0


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
    """RLIMIT_DATA: heap and anonymous mappings. Not RLIMIT_AS, which counts address space
    that libraries merely reserve and so breaks imports (PyTorch's) long before memory is used."""
    processes: Optional[int] = None
    """RLIMIT_NPROC: counted per uid, so it only bites once the command is not root."""
    unshare_net: bool = False
    """Leave the host network (plain mode; bwrap does its own)."""


def make_preexec(setup: ChildSetup) -> Callable[[], None]:
    """A ``preexec_fn`` doing ``setup``. Runs in the forked child of a possibly threaded
    parent, so it makes plain system calls only and allocates as little as it can."""
    parent = os.getpid()
    limits = [(resource.RLIMIT_CORE, 0)]
    if setup.memory_bytes is not None:
        limits.append((resource.RLIMIT_DATA, setup.memory_bytes))
    if setup.processes is not None:
        limits.append((resource.RLIMIT_NPROC, setup.processes))

    def preexec() -> None:
        for which, value in limits:
            resource.setrlimit(which, (value, value))
        if setup.unshare_net:
            _unshare_net()
        _check(_LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")
        if os.getppid() != parent:  # the driver died before we could ask to follow it
            os._exit(137)

    return preexec


REAPER = r"""
import ctypes, os, signal, sys
libc = ctypes.CDLL(None)
libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: the command's orphans become our children
libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: die with whoever started us
uid, gid, command = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
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


def reaper_argv(command: str, uid: Optional[int], gid: Optional[int]) -> list[str]:
    no = -1
    return [sys.executable, "-I", "-S", "-c", REAPER,
            str(no if uid is None else uid), str(no if gid is None else gid), command]


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


# --------------------------------------------------------------------------- the bwrap view


class View(BaseModel):
    """Everything that exists in the bwrap view besides the system directories."""

    model_config = ConfigDict(extra="forbid")

    tree: Path
    out: Path
    data: Optional[Path] = None
    binds: list[tuple[Path, Path, bool]] = []
    """Extra (source, target, read_only) binds: the spec's mounts."""
    python_roots: list[Path] = []
    network: bool = False
    tmp_bytes: Optional[int] = None
    """Size cap of the /tmp and /dev/shm tmpfs (they live in memory, outside the rlimit)."""
    gpus: list[str] = []


def bwrap_argv(view: View, command: list[str]) -> list[str]:
    """The bubblewrap command line that runs ``command`` in ``view``."""
    argv = ["bwrap"]
    bound: list[Path] = []
    for name in SYSTEM_DIRS:
        path = Path(name)
        if path.is_symlink():
            argv += ["--symlink", os.readlink(path), name]
        elif path.is_dir():
            argv += ["--ro-bind", name, name]
            bound.append(path)
    size = ["--size", str(view.tmp_bytes)] if view.tmp_bytes else []
    argv += ["--dev", "/dev", "--proc", "/proc"]
    argv += ["--perms", "1777", *size, "--tmpfs", "/tmp", "--perms", "1777", *size, "--tmpfs", "/dev/shm"]
    argv += _gpu_devices(view.gpus)
    binds = [(root, root, True) for root in view.python_roots]
    binds += [(view.tree, view.tree, False), (view.out, view.out, False)]
    if view.data is not None:
        binds.append((view.data, view.data, True))
    binds += view.binds
    made: set[Path] = {Path("/"), Path("/tmp"), Path("/dev"), Path("/proc"), Path("/dev/shm")}
    for source, target, read_only in sorted(binds, key=lambda b: len(b[1].parts)):
        argv += _parents(target, bound, made)
        argv += ["--ro-bind" if read_only else "--bind", str(source), str(target)]
        bound.append(target)
    if not view.network:
        argv.append("--unshare-net")
    argv += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
             "--hostname", "sandbox", "--die-with-parent", "--new-session", "--chdir", str(view.tree),
             # Our reaper is the namespace's init: bwrap's own would exit unreaped, and the
             # command's CPU time with it.
             "--as-pid-1"]
    if not is_root():
        argv.append("--unshare-user")  # unprivileged bwrap works through a user namespace
    return [*argv, "--", *command]


def _parents(target: Path, bound: list[Path], made: set[Path]) -> list[str]:
    """Directories bwrap must create above ``target``. bwrap would make them mode 0700 as
    root, which an unprivileged command cannot cross, so they are made 0755 explicitly."""
    argv: list[str] = []
    for parent in reversed(target.parents):
        if parent in made or any(parent == b or b in parent.parents for b in bound):
            continue
        argv += ["--perms", "0755", "--dir", str(parent)]
        made.add(parent)
    return argv


def _gpu_devices(gpus: list[str]) -> list[str]:
    """NVIDIA device nodes for the assigned GPUs (the fresh /dev has none), and /sys, read
    only, where the driver's libraries look up the devices."""
    if not gpus:
        return []
    names = ["nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset"]
    names += [f"nvidia{g}" for g in gpus if g.isdigit()]
    argv: list[str] = ["--ro-bind", "/sys", "/sys"]
    for name in names:
        if os.path.exists(f"/dev/{name}"):
            argv += ["--dev-bind", f"/dev/{name}", f"/dev/{name}"]
    return argv


def python_roots(path_env: str) -> list[Path]:
    """The Python installation(s) the command may use: ours (``sys.prefix``, the base
    interpreter's prefix, their resolved real paths) and any other one on its PATH. A root
    that is a home directory or a project checkout is narrowed to its Python parts so that
    binding it does not bring the rest along."""
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    for entry in path_env.split(os.pathsep):
        for name in ("python3", "python"):
            exe = Path(entry) / name
            if entry and exe.exists():
                prefixes.add(str(Path(entry).parent))
                prefixes.add(str(exe.resolve().parent.parent))
    roots: set[Path] = set()
    for prefix in prefixes:
        for path in {Path(prefix), Path(prefix).resolve()}:
            roots.update(_python_parts(path))
    # Keep only outermost roots, and none inside the system directories (bound already).
    keep = sorted(r for r in roots if not _under_system(r))
    return [r for r in keep if not any(o != r and o in r.parents for o in keep)]


def _python_parts(root: Path) -> list[Path]:
    if not root.is_dir() or root == Path("/"):
        return []
    home = Path(os.path.expanduser("~"))
    if root == home or root in home.parents or (root / ".git").exists():
        names = ("bin", "lib", "lib64", "include", "pyvenv.cfg")
        return [root / n for n in names if (root / n).exists()]
    return [root]


def _under_system(path: Path) -> bool:
    return any(path == Path(d) or Path(d) in path.parents for d in SYSTEM_DIRS)


# --------------------------------------------------------------------------- host-side file access


def hand_over(paths: list[Path], uid: int, gid: int) -> None:
    """Make the command's writable directories its own (recursively, links not followed)."""
    for top in paths:
        os.lchown(top, uid, gid)
        for root, dirs, files in os.walk(top):
            for name in dirs + files:
                os.lchown(os.path.join(root, name), uid, gid)


def grant_read(top: Path) -> None:
    """Let any uid read ``top`` (the data directory: what the command is meant to read): add
    o+r, and o+x to directories and to files executable by their owner. Only missing bits
    are added; links are not followed."""
    _add_read(str(top))
    for root, dirs, files in os.walk(top):
        for name in dirs + files:
            _add_read(os.path.join(root, name))


def _add_read(path: str) -> None:
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        return
    want = stat.S_IROTH
    if stat.S_ISDIR(st.st_mode) or st.st_mode & stat.S_IXUSR:
        want |= stat.S_IXOTH
    if st.st_mode & want != want:
        os.chmod(path, stat.S_IMODE(st.st_mode) | want)


def unreachable_parent(path: Path, uid: int) -> Optional[Path]:
    """The first directory above ``path`` that ``uid`` cannot enter, if any (plain mode:
    the command sees the host's real directories and their permissions)."""
    for parent in reversed(path.parents):
        st = parent.stat()
        if st.st_uid != uid and not st.st_mode & stat.S_IXOTH:
            return parent
    return None
