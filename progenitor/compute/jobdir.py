"""A job's directory on the worker: the candidate's tree and outputs, held to a disk quota.

As root (the process backend's usual case, and Docker's), the directory is a tmpfs of the
quota's size and file count, mounted here before the tree is unpacked: the kernel refuses
the write that would pass it (``ENOSPC``), so nothing overshoots, for every sandbox mode and
backend alike (bubblewrap, our own view and Docker all bind its ``tree`` and ``out``). It
costs memory, not disk, and only as far as it is filled; under Docker those pages count
against the container's memory limit too. Without root no mount is possible: each file is
capped by RLIMIT_FSIZE (the sandboxes set it from ``Limits.disk_bytes``). Either way a watcher
walks the tree and outputs every 0.2 s (or twice as long as a walk takes) and counts each
file's *apparent* size: a sparse file holds almost nothing on a disk or a tmpfs, but becomes
its whole size when it is copied to the host. A fast writer may pass the quota by what it
writes in that time before it is killed; a path deeper or longer than the walk may follow
(``boundary.walk.TREE``) is over the quota too, since a quota cannot hold what it cannot see.

Docker's daemon mounts the job's directories from its own mount namespace: a tmpfs mounted
in ours is invisible to it when the two differ (a driver in ``unshare -m``, in a container
beside the socket, under systemd's PrivateTmp). So for Docker the tmpfs is used only where a
``dockerd`` is seen in our mount namespace; elsewhere the quota is the watcher's.

Either way ``over()`` says, in one sentence, when the quota is reached; the job is then
killed with the status ``disk``. A tmpfs left by a driver that was killed outright (its pid
is in the name) is unmounted by the next job on that machine.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import re
import stat
import tempfile
import time
from pathlib import Path
from typing import Iterator, Optional

from progenitor.boundary.walk import TREE, Bounds, walk
from progenitor.boundary.walk import remove_tree as _remove_tree
from progenitor.errors import CandidateDataError
from progenitor.run.processes import alive
from progenitor.sandbox.access import is_root
from progenitor.sandbox.outcome import size

__all__ = ["JobDir", "daemon_shares_our_mounts", "job_dir", "remove_tree", "sweep_job_dirs"]

PREFIX = "progenitor-job-"
POLL_SECONDS = 0.2
"""How often the quota is looked at while a job runs (at least)."""
FULL_SLACK = 64 << 10
"""A tmpfs with less than this left is full: the candidate's last write was refused."""
_MS_NOSUID, _MS_NODEV = 2, 4
_MNT_DETACH = 2
_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


class JobDir:
    """``path`` holds ``tree`` and ``out``; ``mounted`` when it is a tmpfs of the quota."""

    def __init__(self, path: Path, disk_bytes: Optional[int], files: Optional[int], mounted: bool):
        self.path, self.disk_bytes, self.files, self.mounted = path, disk_bytes, files, mounted
        self.tree, self.out = path / "tree", path / "out"
        self._walk_seconds = 0.0

    @property
    def poll_seconds(self) -> float:
        """How often a watcher should ask ``over()``: a walk costs what it last took, and is
        not let take more than a third of the driver's time."""
        return max(POLL_SECONDS, 2 * self._walk_seconds)

    def over(self) -> Optional[str]:
        """Why the tree and outputs are at their quota, or None."""
        if self.disk_bytes is None and self.files is None:
            return None
        try:
            used, entries = self.usage()
        except CandidateDataError as exc:  # a path the quota cannot follow: it cannot be held either
            return f"disk quota: its tree and outputs hold {exc}, beyond what the quota can follow"
        if self.disk_bytes is not None and used >= self.disk_bytes - (FULL_SLACK if self.mounted else 0):
            return (f"disk quota: its tree and outputs reached the {size(self.disk_bytes)} quota "
                    "(train.resources.disk)")
        if self.files is not None and entries >= self.files:
            return (f"disk quota: its tree and outputs reached {self.files} files and directories "
                    "(train.resources.files)")
        return None

    def usage(self) -> tuple[int, int]:
        """(bytes, entries) used by the tree and outputs. Bytes are each file's apparent size
        (or what it holds on disk, if more): a sparse file of 95 MiB counts 95 MiB, as it will
        when it is copied to the host. On a tmpfs, the kernel's own count is taken when larger."""
        started = time.monotonic()
        try:
            used, entries = _walk_usage([self.tree, self.out], stop_entries=self.files, stop_bytes=self.disk_bytes)
        finally:
            self._walk_seconds = time.monotonic() - started
        if self.mounted:
            st = os.statvfs(self.path)
            # The root of the tmpfs is one inode of its own.
            used = max(used, (st.f_blocks - st.f_bfree) * st.f_frsize)
            entries = max(entries, st.f_files - st.f_ffree - 1)
        return used, entries


@contextlib.contextmanager
def job_dir(workdir: Optional[Path], disk_bytes: Optional[int], files: Optional[int],
            tmpfs: bool = True) -> Iterator[JobDir]:
    """A fresh job directory (mode 0711: others may pass, not look), removed afterwards;
    ``tmpfs`` False: never a tmpfs (whoever mounts its directories would not see one)."""
    parent = Path(workdir or tempfile.gettempdir())
    mounted = tmpfs and is_root() and (disk_bytes is not None or files is not None)
    if mounted:
        sweep_mounts(parent)
    path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=parent))
    try:
        if mounted:
            _mount_tmpfs(path, disk_bytes, files)
        os.chmod(path, 0o711)
        job = JobDir(path, disk_bytes, files, mounted)
        job.tree.mkdir()
        job.out.mkdir()
        yield job
    finally:
        if mounted:
            _unmount(path)
        remove_tree(path)


def _mount_tmpfs(path: Path, disk_bytes: Optional[int], files: Optional[int]) -> None:
    options = ["mode=0711"]
    if disk_bytes is not None:
        options.append(f"size={disk_bytes}")
    if files is not None:
        options.append(f"nr_inodes={files + 3}")  # the root, tree/ and out/ besides the candidate's
    rc = _LIBC.mount(b"tmpfs", str(path).encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV, ",".join(options).encode())
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"cannot mount the job's tmpfs on {path}: {os.strerror(err)}")


def _unmount(path: Path) -> None:
    """Detached: a process that still holds a file there cannot keep the mount alive for us.
    A failure is not fatal: ``remove_tree`` then empties the tmpfs and leaves its mount point."""
    _LIBC.umount2(str(path).encode(), _MNT_DETACH)


def sweep_mounts(parent: Path) -> int:
    """Unmount and remove job tmpfs left under ``parent`` by drivers that are gone; how many."""
    pattern = re.compile(re.escape(str(parent.resolve()) + "/" + PREFIX) + r"(\d+)-[^/]+$")
    swept = 0
    try:
        with open("/proc/self/mountinfo") as f:
            points = [line.split()[4] for line in f]
    except OSError:
        return 0
    for point in points:
        match = pattern.match(point)
        if match and not alive(int(match.group(1))):
            _unmount(Path(point))
            remove_tree(Path(point))
            swept += 1
    return swept


def sweep_job_dirs(parent: Optional[Path] = None) -> int:
    """Remove the job directories a driver that is gone (killed outright) left in ``parent``
    (default: the machine's temporary directory), ours only; how many. Its tmpfs mounts first."""
    parent = Path(parent or tempfile.gettempdir())
    swept = sweep_mounts(parent) if is_root() else 0
    pattern = re.compile(re.escape(PREFIX) + r"(\d+)-")
    for entry in os.scandir(parent):
        match = pattern.match(entry.name)
        try:
            mine = entry.is_dir(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_uid == os.geteuid()
        except OSError:
            continue
        if match and mine and not alive(int(match.group(1))):
            remove_tree(Path(entry.path))
            swept += 1
    return swept


@functools.lru_cache(maxsize=None)
def daemon_shares_our_mounts(name: str = "dockerd") -> bool:
    """Whether a process called ``name`` runs here in our mount namespace (so that it sees a
    mount we make); False when none is seen (a remote or rootless daemon, another namespace)."""
    try:
        ours = os.stat("/proc/self/ns/mnt").st_ino
    except OSError:
        return False
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(os.path.join(entry.path, "comm")) as f:
                if f.read().strip() != name:
                    continue
            if os.stat(os.path.join(entry.path, "ns", "mnt")).st_ino == ours:
                return True
        except OSError:
            continue
    return False


def _walk_usage(tops: list[Path], stop_entries: Optional[int], stop_bytes: Optional[int]) -> tuple[int, int]:
    """Bytes (apparent, see ``usage``) and entries below ``tops``, links not followed; the walk
    stops as soon as a cap is passed, so that a million files cost no more than the cap's worth
    of looking. A path beyond ``boundary.walk.TREE`` raises ``CandidateDataError``."""
    used = entries = 0
    bounds = Bounds(entries=max(TREE.entries, (stop_entries or 0) + 1))
    for top in tops:
        for entry in walk(top, bounds):
            entries += 1
            st = entry.st
            used += max(st.st_size, st.st_blocks * 512) if stat.S_ISREG(st.st_mode) else st.st_blocks * 512
            if (stop_entries is not None and entries >= stop_entries) or (
                    stop_bytes is not None and used >= stop_bytes):
                return used, entries
    return used, entries


def remove_tree(path: Path) -> None:
    """Remove a job directory whatever the candidate left in it (``boundary.walk.remove_tree``:
    any depth, any modes, links removed and never followed); a failure is not fatal."""
    with contextlib.suppress(OSError):
        _remove_tree(path)
