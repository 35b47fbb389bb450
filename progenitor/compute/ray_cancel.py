"""Cancelling Ray tasks until they are gone, in bounded time, on a busy machine too.

``ray.cancel(ref, force=False)`` raises ``KeyboardInterrupt`` in the task, which tears its
sandbox down and ends. One request is not enough: a cancel that reaches a worker while it is
still starting the task (seconds, on a loaded machine) is lost, and the task then trains to
its wall time. So a cancel is sent again until the task ends, turned into a forced one (the
worker is killed; a sandbox dies with it) after ``soft_seconds``, and given up on after
``give_up_seconds``, so that whoever waits for the tasks gets an answer in bounded time.
"""

from __future__ import annotations

import time
from typing import Any, Hashable

RESEND_SECONDS = 2.0
"""How often a cancel is sent again to a task that has not ended."""
SOFT_SECONDS = 15.0
"""How long a task gets to tear its sandbox down before its worker is killed."""
GIVE_UP_SECONDS = 25.0
"""How long after the first request a task's end is waited for at most."""


class Canceller:
    """Sends, resends and finally forces the cancel of each task it is given."""

    def __init__(self, soft_seconds: float = SOFT_SECONDS, give_up_seconds: float = GIVE_UP_SECONDS,
                 resend_seconds: float = RESEND_SECONDS):
        self.soft_seconds = soft_seconds
        self.give_up_seconds = give_up_seconds
        self.resend_seconds = resend_seconds
        self._first: dict[Hashable, float] = {}
        self._last: dict[Hashable, float] = {}

    def tick(self, refs: list[Any]) -> None:
        """Send whatever cancel is due for each of ``refs`` (the tasks still under way)."""
        now = time.monotonic()
        for ref in refs:
            first = self._first.setdefault(ref, now)
            last = self._last.get(ref)
            if last is not None and now - last < self.resend_seconds:
                continue
            self._last[ref] = now
            _cancel(ref, force=now - first >= self.soft_seconds)

    def given_up(self, ref: Any) -> bool:
        """Has ``ref`` had its time? (Its end is then reported without Ray's word.)"""
        first = self._first.get(ref)
        return first is not None and time.monotonic() - first >= self.give_up_seconds

    def waited(self, ref: Any) -> float:
        first = self._first.get(ref)
        return 0.0 if first is None else time.monotonic() - first

    def clear(self) -> None:
        self._first.clear()
        self._last.clear()


def _cancel(ref: Any, force: bool) -> None:
    import ray

    try:
        # Not force at first: the task gets KeyboardInterrupt and tears its sandbox down; a
        # forced exit kills the worker, and a Docker container would outlive it.
        ray.cancel(ref, force=force)
    except Exception:  # noqa: BLE001 - already finished or gone: nothing to cancel
        pass
