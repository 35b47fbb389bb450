"""An executor started in the background, so that its start overlaps the run's preparation.

Ray's start takes 6-10 s on a small machine; the run's preparation (exporting the base commit,
the task's ``data.prepare``, the baseline's training and scoring) takes as long again. One
after the other, every slot waits for both. ``StartingExecutor`` calls its ``start`` in a thread
the moment the run's session opens; every method that needs the executor waits for it (an error
of the start is raised there, by the first caller). With an ``interim`` executor (a local pool,
given when Ray is a local instance on this very machine: the same cores, the same sandbox),
jobs that come before the start is done run there instead of waiting: the baseline trains
while Ray starts. A cluster (``--ray-address``) gets no interim: its nodes, not this machine,
have what the task asks for.

The thread that starts the executor lives until ``close``: Ray's own processes (GCS, raylet)
are started with a parent-death signal, which Linux sends when the *thread* that started them
ends, not the process; a start thread that returned would take Ray down with it.
"""

from __future__ import annotations

import threading
from typing import Callable, Iterator, Optional

from progenitor.compute.base import EventCallback, Executor, JobResult, TrainJob, slots_of

__all__ = ["StartingExecutor"]


class StartingExecutor:
    """``start()`` called in a thread now; the executor it makes, once made, does the work."""

    def __init__(self, name: str, start: Callable[[], Executor], interim: Optional[Executor] = None):
        self.name = name
        self._start = start
        self._interim = interim
        self._ready = threading.Event()
        self._closed = threading.Event()
        self._made: Optional[Executor] = None
        self._error: Optional[BaseException] = None
        threading.Thread(target=self._starting, name=f"progenitor-start-{name}", daemon=True).start()

    def _starting(self) -> None:
        try:
            self._made = self._start()
        except BaseException as exc:  # noqa: BLE001 - handed to whoever needs the executor
            self._error = exc
        finally:
            self._ready.set()
        self._closed.wait()  # what this thread started dies with it (see the module's docstring)

    @property
    def ready(self) -> bool:
        """Has the start ended (well or not)?"""
        return self._ready.is_set()

    def started(self) -> Executor:
        """The executor, once started (waits for the start; raises its error)."""
        self._ready.wait()
        if self._error is not None:
            raise self._error
        assert self._made is not None
        return self._made

    def _now(self) -> Executor:
        """Where a job goes now: the interim executor while the start is under way, if there is one."""
        if self._interim is not None and not self._ready.is_set():
            return self._interim
        return self.started()

    def run(self, jobs: list[TrainJob], on_event: Optional[EventCallback] = None) -> Iterator[JobResult]:
        return self._now().run(jobs, on_event)

    def slots(self, cpus: float, gpus: float = 0.0) -> int:
        return slots_of(self._now(), cpus, gpus)

    def cancel(self) -> None:
        """Cancel the jobs under way on either side (without waiting for a start under way)."""
        if self._interim is not None:
            self._interim.cancel()
        if self._made is not None:
            self._made.cancel()

    def close(self) -> None:
        """Close both sides; a start under way is waited for, so that what it started is stopped."""
        if self._interim is not None:
            self._interim.close()
        self._ready.wait()
        try:
            if self._made is not None:
                self._made.close()
        finally:
            self._closed.set()
