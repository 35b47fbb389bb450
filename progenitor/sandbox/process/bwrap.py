"""The bubblewrap whitelist view: the ``bwrap`` command line that shows a command only what
it may see. Only the system directories, the Python installation(s), a fresh ``/dev``,
``/proc`` and ``/tmp``, and the spec's own directories exist in it; the model repo, its
``.git``, held-out labels and the user's home are simply absent."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

from pydantic import BaseModel, ConfigDict

from progenitor.sandbox.access import is_root

__all__ = ["SYSTEM_DIRS", "View", "bwrap_argv", "python_roots"]

SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
"""Bound read-only into the bwrap view (a symlink, like ``/lib -> usr/lib``, is recreated as one)."""


class View(BaseModel):
    """Everything that exists in the bwrap view besides the system directories."""

    model_config = ConfigDict(extra="forbid")

    tree: Path
    out: Path
    data: Optional[Path] = None
    read_only_tree: bool = False
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
    binds += [(view.tree, view.tree, view.read_only_tree), (view.out, view.out, False)]
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
