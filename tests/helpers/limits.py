"""Candidates that try to pass their resource limits, and measurements taken from outside.

``HOG`` holds memory every way the kernel offers (shared anonymous mappings, a memfd, a
shared mapping of ``/dev/zero``, POSIX shared memory, files in ``/tmp`` and ``/dev/shm``,
many processes each under any per-process limit) in 8 MiB steps, saying after each step how
much it holds. ``Busy`` watches processes that carry a token in their command line, in this
machine's ``/proc`` (Docker's processes are there too), and measures the CPU they use
between two samples: the tests look only at processes they started.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Optional

MEMORY_KINDS = ("shared-mmap", "memfd", "dev-zero", "posix-shm", "dev-shm", "tmp", "processes")
"""Every way ``HOG`` holds memory (``processes``: children of 64 MiB each, private memory)."""

SLACK = 1.10
"""A measured figure may pass its limit by 10 % (what the issue asks: limits hold within 10 %)."""

HOG = r'''
import mmap, os, sys, time
kind, limit, token = sys.argv[1], int(sys.argv[2]), sys.argv[3]
chunk = b"x" * (8 << 20)
held, keep, files = 0, [], {"dev-shm": ["/dev/shm", "/tmp"], "tmp": ["/tmp", "/dev/shm"]}.get(kind, [])
if kind == "memfd":
    fd = os.memfd_create("hog")
elif kind == "dev-zero":
    fd = os.open("/dev/zero", os.O_RDWR)
elif kind == "posix-shm":
    from multiprocessing import shared_memory
while held < 4 * limit:
    step = len(chunk)
    if kind in ("shared-mmap", "dev-zero"):
        m = mmap.mmap(-1 if kind == "shared-mmap" else fd, step, mmap.MAP_SHARED)
        m.write(chunk)
        keep.append(m)
    elif kind == "memfd":
        os.write(fd, chunk)
    elif kind == "posix-shm":
        m = shared_memory.SharedMemory(name="%s-%d" % (token, len(keep)), create=True, size=step)
        m.buf[:step] = chunk
        keep.append(m)
    elif kind == "processes":
        step = 64 << 20
        r, w = os.pipe()
        child = os.fork()
        if child == 0:
            hold = b"y" * step
            os.write(w, b"!")
            time.sleep(600)
            os._exit(0)
        os.close(w)
        keep.append(child)
        ready = os.read(r, 1) == b"!"
        if not ready or any(os.waitpid(pid, os.WNOHANG)[0] for pid in keep):  # one was killed: it holds no more
            sys.exit("a holder died at %d" % held)
    else:
        try:
            with open("%s/%s-%d" % (files[0], token, held), "wb") as f:
                f.write(chunk)
        except OSError as exc:  # that tmpfs is full: on to the next
            files.pop(0)
            if not files:
                sys.exit("both tmpfs full at %d: %s" % (held, exc))
            continue
    held += step
    print("held %d" % held, flush=True)
print("ESCAPED %d" % held, flush=True)
'''

BUSY = "python3 -c 'import sys\nwhile True: pass' {token}"
"""One busy process, its token in its command line so that ``Busy`` finds it."""


def last_held(stdout: str) -> int:
    """The most the hog said it held (0 when it said nothing)."""
    held = [int(line.split()[1]) for line in stdout.splitlines() if line.startswith("held ")]
    return max(held, default=0)


def carriers(token: str) -> list[int]:
    """Processes of this machine with ``token`` as one argument of their own (not the shell,
    bwrap or reaper whose one long argument is the whole command)."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    if token.encode() in f.read().split(b"\0"):
                        found.append(int(name))
            except OSError:
                continue
    return found


def cpu_ticks(pids: list[int]) -> int:
    """utime + stime, in clock ticks, of ``pids`` (a process gone counts 0)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return total


class Busy:
    """Measures, from /proc, the cores used by the processes carrying ``token`` over
    ``seconds``, once ``count`` of them are running (in a thread, beside the sandbox's run)."""

    def __init__(self, token: str, count: int, seconds: float = 4.0, timeout: float = 60.0):
        self.token, self.count, self.seconds, self.timeout = token, count, seconds, timeout
        self.cores: Optional[float] = None
        self.seen = 0
        self.done = threading.Event()
        """Set once measured (or given up): a cancel for the run, which then need not last longer."""
        self.thread = threading.Thread(target=self._measure, daemon=True)

    def __enter__(self) -> "Busy":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.thread.join(self.timeout)

    def _measure(self) -> None:
        try:
            self._sample()
        finally:
            self.done.set()

    def _sample(self) -> None:
        deadline = time.monotonic() + self.timeout
        pids: list[int] = []
        while time.monotonic() < deadline and len(pids) < self.count:
            pids = carriers(self.token)
            time.sleep(0.05)
        self.seen = len(pids)
        if len(pids) < self.count:
            return
        time.sleep(0.5)  # past their start-up
        t0, ticks0 = time.monotonic(), cpu_ticks(pids)
        time.sleep(self.seconds)
        t1, ticks1 = time.monotonic(), cpu_ticks(pids)
        self.cores = (ticks1 - ticks0) / os.sysconf("SC_CLK_TCK") / (t1 - t0)


FORKER = r'''
import os, sys, time
kids = 0
try:
    while kids < 1000:  # bounded: a limit that fails fails the test, not the machine
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        kids += 1
except OSError as exc:
    print("refused after %d forks: %s" % (kids, exc), flush=True)
    time.sleep(2)  # held a moment, so that they are counted from outside
    sys.exit(0)
print("ESCAPED %d forks" % kids, flush=True)
'''
"""Forks sleepers until the kernel refuses (its argv, token included, is every child's)."""


class Peak:
    """The most processes carrying ``token`` seen at once, sampled from /proc while a run goes on."""

    def __init__(self, token: str):
        self.token, self.most = token, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> "Peak":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()

    def _sample(self) -> None:
        while not self.stop.wait(0.02):
            self.most = max(self.most, len(carriers(self.token)))
