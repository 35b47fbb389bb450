"""A command's output, captured: each line handed on as it comes, the last bytes kept.

``Tail`` is one stream (both backends use it); ``watch`` and ``drain`` are the process
backend's one loop over the child's two pipes, its exit, the wall clock and the cancel
event, so that a flood of output, a hung grandchild or a cancel can never block the caller.
"""

from __future__ import annotations

import os
import selectors
import threading
import time
from typing import Literal, Optional

from progenitor.sandbox.base import LineCallback

__all__ = ["Tail", "drain", "exited", "watch"]

POLL_SECONDS = 0.05
"""How often the loop looks at the cancel event and the clock when nothing else happens."""
READ_BYTES = 1 << 16


class Tail:
    """One output stream: hands each line to ``on_line`` and keeps the last ``cap`` bytes."""

    MAX_LINE = 1 << 16
    """A line longer than this is passed on in pieces (one endless line must not fill memory)."""

    def __init__(self, name: str, cap: int, on_line: Optional[LineCallback]) -> None:
        self.name, self.cap, self.on_line = name, cap, on_line
        self.kept = bytearray()
        self.partial = bytearray()
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.kept += chunk
        if len(self.kept) > 2 * self.cap:
            del self.kept[: len(self.kept) - self.cap]
        if self.on_line is None:
            return
        self.partial += chunk
        *lines, rest = self.partial.split(b"\n")
        while len(rest) > self.MAX_LINE:
            lines.append(rest[: self.MAX_LINE])
            rest = rest[self.MAX_LINE:]
        self.partial = bytearray(rest)
        for line in lines:
            self.on_line(self.name, line.decode("utf-8", "replace").rstrip("\r"))

    def close(self) -> None:
        """Hand on the last line when the stream ended without a newline."""
        if self.on_line is not None and self.partial:
            self.on_line(self.name, self.partial.decode("utf-8", "replace").rstrip("\r"))
        self.partial = bytearray()

    def text(self) -> str:
        tail = bytes(self.kept[-self.cap:]) if self.cap > 0 else b""
        if self.truncated:  # do not start in the middle of a UTF-8 character
            while tail and tail[0] & 0xC0 == 0x80:
                tail = tail[1:]
        return tail.decode("utf-8", "replace")

    @property
    def truncated(self) -> bool:
        return self.total > self.cap


def watch(pid: int, streams: dict[int, Tail], deadline: float,
          cancel: Optional[threading.Event]) -> Literal["exit", "timeout", "cancel"]:
    """Read output until the child exits ("exit"), the clock runs out ("timeout") or the
    cancel event is set ("cancel"). The child is left unreaped, so its pid stays ours."""
    selector = selectors.DefaultSelector()
    for fd in streams:
        os.set_blocking(fd, False)
        selector.register(fd, selectors.EVENT_READ)
    pidfd = _pidfd(pid)
    if pidfd is not None:
        selector.register(pidfd, selectors.EVENT_READ)  # readable once the child has exited
    try:
        while not exited(pid):
            if cancel is not None and cancel.is_set():
                return "cancel"
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout"
            for key, _ in selector.select(min(POLL_SECONDS, left)):
                if key.fd in streams and not _read(key.fd, streams[key.fd]):
                    selector.unregister(key.fd)
        return "exit"
    finally:
        selector.close()
        if pidfd is not None:
            os.close(pidfd)


def drain(streams: dict[int, Tail], until: float) -> None:
    """Read what is left in the pipes, up to EOF or ``until`` (an escaped process may hold them)."""
    selector = selectors.DefaultSelector()
    for fd in streams:
        selector.register(fd, selectors.EVENT_READ)
    try:
        while selector.get_map() and time.monotonic() < until:
            for key, _ in selector.select(max(0.0, until - time.monotonic())):
                if not _read(key.fd, streams[key.fd]):
                    selector.unregister(key.fd)
    finally:
        selector.close()
        for tail in streams.values():
            tail.close()


def exited(pid: int) -> bool:
    """Whether our child ``pid`` has exited, without reaping it."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _read(fd: int, tail: Tail) -> bool:
    """Read one chunk into ``tail``; False at end of file."""
    try:
        chunk = os.read(fd, READ_BYTES)
    except BlockingIOError:
        return True
    if not chunk:
        return False
    tail.feed(chunk)
    return True


def _pidfd(pid: int) -> Optional[int]:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None  # old kernel or Python: the loop polls instead
