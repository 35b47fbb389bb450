"""The ``unshare`` mode: the bubblewrap whitelist view, built by the reaper itself with
mount(2) where bubblewrap is missing or unusable and we are root.

Root may make a private mount namespace without bubblewrap. The reaper (still root, before
it forks the command) unshares mount, IPC and UTS namespaces, mounts a fresh tmpfs as the new
root, binds into it what the ``View`` lists (the system directories read-only, the Python
roots read-only, the tree and outputs read-write, the data read-only), gives it a minimal
``/dev``, a ``/proc`` that hides other users' processes, size-capped ``/tmp`` and ``/dev/shm``,
and ``pivot_root``s into it. The host's old root is detached: the model repo, its run
directory (holdout labels, the trusted tree, other candidates), other sandboxes' job dirs,
the host's ``/tmp`` and the user's home simply do not exist for the command. A Python that
lives under a closed home directory (a pyenv in ``/root``) is bound back at its own path, on
directories of the new root that are open to the command, so it runs while the home stays
hidden.

The driver only builds the plan (``view_plan``); the reaper carries it out (``VIEW_CODE``),
so that no mount call runs in a forked child of the threaded driver.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from pathlib import Path

from progenitor.errors import SandboxError
from progenitor.sandbox.process.bwrap import SYSTEM_DIRS, View

__all__ = ["DEV_NODES", "VIEW_CODE", "view_plan", "view_root"]

DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")
"""The host device nodes the view's ``/dev`` holds (bubblewrap's ``--dev`` set)."""


def view_root() -> Path:
    """The host directory every view's new root is mounted on, each in its own private mount
    namespace: one for all runs (the mounts never reach the host, so it stays empty), and
    nothing per run to be left behind by a driver killed outright."""
    path = Path(tempfile.gettempdir()) / "progenitor-view-root"
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        raise SandboxError(f"{path} is not a private directory of this user's; remove it so that it is made anew")
    return path


def view_plan(view: View, root: Path) -> str:
    """The view as JSON for the reaper: ``root`` is an empty host directory that becomes the
    mount point of the new root (it stays empty on the host: the mount is private)."""
    ops: list[list] = []
    for name in SYSTEM_DIRS:
        path = Path(name)
        if path.is_symlink():
            ops.append(["symlink", os.readlink(path), name])
        elif path.is_dir():
            ops.append(["bind", name, name, True])
    size = view.tmp_bytes or 0
    ops += [["dev"], ["proc"], ["tmpfs", "/tmp", 0o1777, size], ["tmpfs", "/dev/shm", 0o1777, size]]
    if view.gpus:
        ops.append(["bind", "/sys", "/sys", True])
        names = ["nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset"]
        names += [f"nvidia{g}" for g in view.gpus if g.isdigit()]
        ops += [["bind", f"/dev/{n}", f"/dev/{n}", False] for n in names if os.path.exists(f"/dev/{n}")]
    binds = [(r, r, True) for r in view.python_roots]
    binds += [(view.tree, view.tree, view.read_only_tree), (view.out, view.out, False)]
    if view.data is not None:
        binds.append((view.data, view.data, True))
    binds += view.binds
    for source, target, read_only in sorted(binds, key=lambda b: len(Path(b[1]).parts)):
        ops.append(["bind", str(source), str(target), bool(read_only)])
    return json.dumps({"root": str(root), "ops": ops, "cwd": str(view.tree), "hostname": "sandbox"})


VIEW_CODE = r"""
import ctypes, json, os
RDONLY, NOSUID, NODEV, NOEXEC, REMOUNT, BIND, REC, PRIVATE = 1, 2, 4, 8, 32, 4096, 16384, 1 << 18
view_libc = ctypes.CDLL(None, use_errno=True)
view_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]


def check(rc, what):
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, "%s: %s" % (what, os.strerror(err)))


def mount(source, target, fstype, flags, data=None):
    enc = lambda s: None if s is None else s.encode()
    check(view_libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), "mount %s" % target)


def makedirs(path):
    # Directories the view needs above a bind: open to the command (0755), owned by root.
    here = ""
    for part in [p for p in path.split("/") if p]:
        here += "/" + part
        if not os.path.isdir(here):
            os.mkdir(here)
            os.chmod(here, 0o755)


def touch(path, mode):
    makedirs(os.path.dirname(path))
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, mode))


def bind(source, where, read_only):
    if os.path.isdir(source):
        makedirs(where)
    elif not os.path.exists(where):
        touch(where, 0o644)
    mount(source, where, None, BIND | REC)
    flags = REMOUNT | BIND | NOSUID | (RDONLY if read_only else 0) | (0 if source.startswith("/dev/") else NODEV)
    mount(None, where, None, flags)


def tmpfs(where, mode, size, flags=NOSUID | NODEV):
    makedirs(where)
    mount("tmpfs", where, "tmpfs", flags, "mode=%o" % mode + (",size=%d" % size if size else ""))


def dev(where):
    # bubblewrap's --dev: a few harmless nodes bound from the host, and the fd links.
    tmpfs(where, 0o755, 1 << 20, NOSUID | NOEXEC)
    for name in DEV_NODES:
        touch(where + "/" + name, 0o666)
        mount("/dev/" + name, where + "/" + name, None, BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, where + "/" + name)


def build_view(plan):
    root = plan["root"]
    check(view_libc.unshare(0x20000 | 0x08000000 | 0x04000000), "unshare(NEWNS|NEWIPC|NEWUTS)")
    mount(None, "/", None, REC | PRIVATE)  # nothing done here reaches the host
    tmpfs(root, 0o755, 16 << 20)
    for op in plan["ops"]:
        if op[0] == "symlink":
            os.symlink(op[1], root + op[2])
        elif op[0] == "bind":
            bind(op[1], root + op[2], op[3])
        elif op[0] == "tmpfs":
            tmpfs(root + op[1], op[2], op[3])
        elif op[0] == "dev":
            dev(root + "/dev")
        elif op[0] == "proc":
            makedirs(root + "/proc")
            # hidepid=2: the command sees its own processes only; the reaper (root) sees all.
            mount("proc", root + "/proc", "proc", NOSUID | NODEV | NOEXEC, "hidepid=2")
    os.chdir(root)
    check(view_libc.pivot_root(b".", b"."), "pivot_root")
    check(view_libc.umount2(b".", 2), "detach the host's root")  # MNT_DETACH: the old root is gone
    os.chdir("/")
    mount(None, "/", None, REMOUNT | RDONLY | NOSUID | NODEV)
    name = plan["hostname"].encode()
    view_libc.sethostname(name, len(name))
    os.chdir(plan["cwd"])
""".replace("DEV_NODES", repr(DEV_NODES))
"""The reaper's half: ``build_view(plan)``, run as root before the command is forked."""
