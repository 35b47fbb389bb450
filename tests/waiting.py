"""Waiting on conditions, not sleeping for fixed times: a busy machine is slow, never wrong."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float, poll: float = 0.1) -> T:
    """Poll ``condition`` until it returns something true (returned) or ``timeout`` seconds
    pass (then its last value, false, is returned for the caller's assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(poll)
