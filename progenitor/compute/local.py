"""The in-process executor: a thread pool on this machine, no Ray.

Used by tests and by users who want no Ray. Jobs run at most ``slots`` at a time, where a
slot is what the job's ``cpus`` asks for out of this machine's cores. Calls of ``run`` from
several threads are independent; the caller that makes them (the candidate pool) keeps the
total within ``slots``.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Iterator, Optional

from progenitor.compute.base import EventCallback, JobResult, TrainJob, execute_job
from progenitor.errors import UserError


class LocalExecutor:
    name = "local"

    def __init__(self, data_dir: Optional[Path], max_parallel: Optional[int] = None, workdir: Optional[Path] = None):
        self.data_dir = data_dir
        self.max_parallel = max_parallel
        self.workdir = workdir
        self._cancels: list[threading.Event] = []
        self._lock = threading.Lock()

    def slots(self, cpus: float, gpus: float = 0.0) -> int:
        if self.max_parallel:
            return self.max_parallel
        return max(1, int((os.cpu_count() or 1) // max(cpus, 1.0)))

    def _slots(self, jobs: list[TrainJob]) -> int:
        return self.slots(max((j.limits.cpus for j in jobs), default=1.0))

    def run(self, jobs: list[TrainJob], on_event: Optional[EventCallback] = None) -> Iterator[JobResult]:
        if not jobs:
            return
        _check_fits(jobs)
        emit = on_event or (lambda kind, payload: None)
        with ThreadPoolExecutor(max_workers=self._slots(jobs), thread_name_prefix="progenitor-train") as pool:
            futures: dict[Future, TrainJob] = {pool.submit(self._one, job, emit): job for job in jobs}
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    yield future.result()

    def _one(self, job: TrainJob, emit: EventCallback) -> JobResult:
        cancel = threading.Event()
        with self._lock:
            self._cancels.append(cancel)
        emit("train.start", {"key": job.key})

        def on_line(stream: str, line: str) -> None:
            emit("train.line", {"key": job.key, "stream": stream, "line": line})

        try:
            return execute_job(job, self.data_dir, on_line=on_line, cancel=cancel, workdir=self.workdir)
        finally:
            with self._lock:
                self._cancels.remove(cancel)  # a long run makes thousands of jobs: keep only those under way

    def cancel(self) -> None:
        with self._lock:
            for event in self._cancels:
                event.set()

    def close(self) -> None:
        self.cancel()


def _check_fits(jobs: list[TrainJob]) -> None:
    """The same refusal as the Ray executor's: a job asking for more than this machine has
    would run on CPUs and book GPU-seconds that no GPU spent."""
    from progenitor.compute.resources import machine_resources, shortfall

    # Asked once per generation: GPUs are looked for only when a job wants one.
    have = machine_resources(gpus=any(job.num_gpus > 0 for job in jobs))
    for job in jobs:
        problem = shortfall(job.limits.cpus, job.num_gpus, have, "this machine")
        if problem:
            raise UserError(problem)
