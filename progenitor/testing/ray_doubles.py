"""Stand-ins for the Ray executor's task, for tests of what the driver does when a task
misbehaves (they live in the package so that Ray workers can import them)."""

from __future__ import annotations

import os
import time


def deaf_task(job, data, cache_dir, batch_seconds):
    """A training task that ignores the KeyboardInterrupt of a soft cancel: only a forced
    cancel (its worker killed) ends it. Its "node" is its worker's pid."""
    yield ("start", str(os.getpid()))
    end = time.monotonic() + 300
    while time.monotonic() < end:
        try:
            time.sleep(0.1)
        except KeyboardInterrupt:
            continue
    yield ("result", None)
