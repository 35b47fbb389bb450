"""What a job's own directory held at its fullest: the measure of a disk-quota test.

A quota test must not read the host's free space: every other program on the machine (other
tests, other engineers' work, a package cache) writes to the same disk, and a drop they cause
fails the test (four red-team tests did, on a fresh clone while other work ran). A job keeps
its tree and outputs in a directory of its own, ``progenitor-job-<pid>-*`` under the machine's
temporary directory, named with the pid of the process that ran it: these are sampled here,
this process's only, each by itself (a tmpfs of the quota: what its filesystem says is used;
a plain directory: a walk that adds up its blocks), and the most each held is kept.
"""

from __future__ import annotations

import os
import stat
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

from progenitor.compute.jobdir import PREFIX

__all__ = ["JobDisk"]


def _used(path: str) -> Optional[int]:
    """Bytes held below ``path``: its own filesystem's when it is one (the job's tmpfs), else a
    walk's. The directory is opened first and measured through that descriptor: a tmpfs
    unmounted between a look at the path and its measure would otherwise give the usage of the
    filesystem below it, the whole disk's (a red-team run once read 45 GB that way)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        if os.fstat(fd).st_dev != os.stat(os.path.dirname(path)).st_dev:
            st = os.fstatvfs(fd)
            return (st.f_blocks - st.f_bfree) * st.f_frsize
    except OSError:
        return None
    finally:
        os.close(fd)
    used, stack = 0, [path]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            used += st.st_blocks * 512
            if stat.S_ISDIR(st.st_mode):
                stack.append(entry.path)
    return used


class JobDisk:
    """Samples every job directory of this process while open (``with JobDisk() as disk``).

    ``peaks`` maps each job directory seen to the most bytes it held; ``seen`` to the
    (first, last) time it was seen."""

    def __init__(self, parent: Optional[Path] = None, every: float = 0.05) -> None:
        self.parent = Path(parent or tempfile.gettempdir())
        self.every = every
        self.peaks: dict[str, int] = {}
        self.seen: dict[str, tuple[float, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        pattern = f"{PREFIX}{os.getpid()}-*"
        while True:
            for path in self.parent.glob(pattern):
                used = _used(str(path))
                if used is None:
                    continue
                now = time.time()
                self.peaks[str(path)] = max(self.peaks.get(str(path), 0), used)
                self.seen[str(path)] = (self.seen.get(str(path), (now, now))[0], now)
            if self._stop.wait(self.every):
                return

    @property
    def peak(self) -> int:
        """The most any one job directory held (0: none was seen)."""
        return max(self.peaks.values(), default=0)

    def start(self) -> "JobDisk":
        self._thread.start()
        return self

    def __enter__(self) -> "JobDisk":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
