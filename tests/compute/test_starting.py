"""The executor that starts in the background: the interim local pool takes the jobs that come
before the start ends, the started executor every job after, and a failed start is raised by
whoever needs the executor."""

from __future__ import annotations

import threading

import pytest

from progenitor.compute import get_executor
from progenitor.compute.starting import StartingExecutor


def test_the_interim_serves_until_the_start_ends_then_the_started_one():
    release = threading.Event()
    interim = get_executor("local", None, max_parallel=1)
    made = get_executor("local", None, max_parallel=3)

    def start():
        release.wait(10)
        return made

    executor = StartingExecutor("slow", start, interim=interim)
    try:
        assert not executor.ready
        assert executor._now() is interim and executor.slots(1) == 1  # the run prepares meanwhile
        release.set()
        assert executor.started() is made and executor.ready
        assert executor._now() is made and executor.slots(1) == 3
    finally:
        executor.close()


def test_without_an_interim_jobs_wait_for_the_start_and_its_error_reaches_them():
    def start():
        raise RuntimeError("no Ray here")

    executor = StartingExecutor("broken", start)
    with pytest.raises(RuntimeError, match="no Ray here"):
        executor.slots(1)
    executor.close()
