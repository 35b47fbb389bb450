"""The Ray executor: each candidate's training is a Ray task, on whichever node Ray chose.

With no address it starts a local Ray instance sized to this machine (dashboard off, logs
quiet); with an address (or ``RAY_ADDRESS``) it joins that cluster. Nothing assumes a
shared filesystem: the tree travels inside the ``TrainJob``, the run's visible data as one
archive put once into the object store and unpacked once per node, and the outputs come
back as the size-capped archive in the ``JobResult``. Scoring stays on the driver, so the
holdout labels never leave it (only the visible data directory handed in is shipped).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Iterator, Optional

from pydantic import BaseModel, ConfigDict, Field

from progenitor.compute.base import EventCallback, JobResult, TrainJob, pack_dir
from progenitor.compute.ray_cancel import GIVE_UP_SECONDS, SOFT_SECONDS, Canceller
from progenitor.errors import ComputeError, UserError
from progenitor.sandbox.base import SandboxResult

DATA_CAP_BYTES = 64 << 30


class RayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: Optional[str] = Field(default_factory=lambda: os.environ.get("RAY_ADDRESS") or None)
    """Cluster to join (``host:port``, ``auto``, ``ray://...``); default ``RAY_ADDRESS``, else a local instance."""
    num_cpus: Optional[int] = None
    """CPUs of the local instance (default: this machine's cores)."""
    num_gpus: Optional[float] = None
    """GPUs of the local instance (default: what Ray detects; tests declare logical ones)."""
    object_store_bytes: Optional[int] = None
    """Object store of the local instance (default: a fifth of memory, at most 2 GiB; Ray spills beyond)."""
    resources: dict[str, float] = {}
    """Custom resources of the local instance."""
    job_resources: dict[str, float] = {}
    """Custom resources every training task asks for (e.g. to keep training on GPU nodes)."""
    cache_dir: Optional[str] = None
    """Where workers unpack the run's data (default: the node's temp directory)."""
    max_retries: int = Field(0, ge=0)
    """Times Ray reruns a task whose worker or node died (training is not retried by default)."""
    batch_seconds: float = Field(0.25, gt=0)
    """How often a task sends the lines its command printed back to the driver."""
    cancel_soft_seconds: float = Field(SOFT_SECONDS, gt=0)
    """After a cancel, how long a task gets to tear its sandbox down before its worker is killed."""
    cancel_give_up_seconds: float = Field(GIVE_UP_SECONDS, gt=0)
    """After a cancel, how long ``run`` waits for a task's end at most (it then reports it killed)."""


def connect(config: RayConfig) -> bool:
    """Join the configured cluster or start a local instance; True if this call started Ray."""
    try:
        import ray
    except ImportError:
        raise ComputeError("the ray executor needs the 'ray' package: pip install 'ray>=2.40'") from None

    if ray.is_initialized():
        return False
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
    try:
        if config.address:
            ray.init(address=config.address, **quiet)
        else:
            # "local": never join a cluster left running on this machine by accident.
            ray.init(
                address="local", include_dashboard=False, num_cpus=config.num_cpus or os.cpu_count(),
                num_gpus=config.num_gpus, resources=config.resources or None,
                object_store_memory=config.object_store_bytes or _default_object_store(), **quiet,
            )
    except Exception as exc:  # noqa: BLE001 - every failure to start or join is the same one sentence
        where = f"join the Ray cluster at {config.address}" if config.address else "start a local Ray instance"
        raise ComputeError(f"could not {where}: {exc}") from exc
    return True


def _default_object_store() -> int:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return max(128 << 20, min(2 << 30, memory // 5))


class _Batch:
    """One ``run`` call's tasks: calls from several threads at once keep apart (each its own
    tasks, start times, cancel flag and canceller); ``cancel`` reaches every batch."""

    def __init__(self, config: RayConfig):
        self.inflight: dict = {}
        self.started: dict = {}
        self.cancelled = threading.Event()
        self.canceller = Canceller(config.cancel_soft_seconds, config.cancel_give_up_seconds)

    def cancel_order(self) -> list:
        """Tasks under way, queued ones first: cancelled before a running one frees its CPUs,
        a queued task never starts."""
        return sorted(self.inflight, key=lambda gen: gen in self.started)


class RayExecutor:
    """Runs a batch of ``TrainJob``s as Ray tasks, yielding each result as it finishes."""

    name = "ray"

    def __init__(self, data_dir: Optional[Path], address: Optional[str] = None, config: Optional[RayConfig] = None, **options):
        self.data_dir = Path(data_dir) if data_dir else None
        self.config = config or RayConfig(**options)
        if address:
            self.config = self.config.model_copy(update={"address": address})
        self._owns_ray = connect(self.config)
        self._data: Optional[list] = None
        self._lock = threading.RLock()  # re-entered by a signal handler's cancel on the thread that holds it
        self._data_lock = threading.Lock()
        self._batches: set[_Batch] = set()

    def slots(self, cpus: float, gpus: float = 0.0) -> int:
        """Jobs of this size the cluster holds at once now (an autoscaling cluster may grow)."""
        import ray

        have = ray.cluster_resources()
        fits = [have.get("CPU", 0.0) / cpus] if cpus > 0 else []
        if gpus > 0:
            fits.append(have.get("GPU", 0.0) / gpus)
        return max(1, int(min(fits))) if fits else 1

    def run(self, jobs: list[TrainJob], on_event: Optional[EventCallback] = None) -> Iterator[JobResult]:
        if not jobs:
            return
        emit = on_event or (lambda kind, payload: None)
        if not self.config.address:  # a cluster may grow (autoscaling); this machine will not
            _check_fits(jobs)
        data = self._ship_data()
        task = _remote_task()
        batch = _Batch(self.config)
        with self._lock:
            self._batches.add(batch)
        try:
            for job in jobs:
                options = {"num_cpus": job.limits.cpus, "num_gpus": job.num_gpus,
                           "max_retries": self.config.max_retries, "name": f"progenitor-train:{job.key}"}
                if self.config.job_resources:
                    options["resources"] = self.config.job_resources
                gen = task.options(**options).remote(job, data, self.config.cache_dir, self.config.batch_seconds)
                batch.inflight[gen] = job
            yield from self._collect(batch, emit)
        finally:
            if batch.inflight:  # the caller stopped early, or something raised: stop the rest
                batch.cancelled.set()
                for _ in self._until_ended(batch, lambda kind, payload: None):
                    pass
            with self._lock:
                self._batches.discard(batch)

    def _collect(self, batch: _Batch, emit: EventCallback) -> Iterator[JobResult]:
        for result in self._until_ended(batch, emit):
            emit("train.end", {"key": result.key, "status": result.sandbox.status, "node": result.node})
            yield result

    def _until_ended(self, batch: _Batch, emit: EventCallback) -> Iterator[JobResult]:
        """Each task's result as it ends. Once cancelled, a task is cancelled again until it
        ends, and one that Ray never confirms is reported killed after the canceller's bound."""
        while batch.inflight:
            if batch.cancelled.is_set():
                batch.canceller.tick(batch.cancel_order())
                ended = {gen: self._finish(batch, gen, emit) for gen in self._completed(batch)}
                for gen in batch.inflight:
                    if gen not in ended and batch.canceller.given_up(gen):
                        ended[gen] = self._lost(batch, gen, "killed", f"cancelled; Ray did not confirm it within "
                                                                      f"{batch.canceller.waited(gen):.0f} s")
            else:
                # Checked for each one: a stream that a cancel has just ended reads as ready.
                ended = {gen: self._step(batch, gen, emit) for gen in self._readable(batch)
                         if not batch.cancelled.is_set()}
            for gen, result in ended.items():
                if result is not None and gen in batch.inflight:
                    del batch.inflight[gen]
                    batch.started.pop(gen, None)
                    yield result

    @staticmethod
    def _readable(batch: _Batch) -> list:
        """Generators with a message to read (waits up to half a second for one)."""
        import ray

        ready, _ = ray.wait(list(batch.inflight), num_returns=1, timeout=0.5)
        if ready:  # gather every other generator that has something too
            ready, _ = ray.wait(list(batch.inflight), num_returns=len(batch.inflight), timeout=0)
        return ready

    @staticmethod
    def _completed(batch: _Batch) -> list:
        """Generators whose task is over (waits up to half a second for one).

        After a cancel, Ray ends a task's stream at once while the task may still be tearing
        its sandbox down; reading such a stream waits for the task's end, unbounded. So a
        cancelled task is read only once it is over: then nothing can block."""
        import ray

        by_end = {gen.completed(): gen for gen in batch.inflight}
        done, _ = ray.wait(list(by_end), num_returns=1, timeout=0.5)
        if done:
            done, _ = ray.wait(list(by_end), num_returns=len(by_end), timeout=0)
        return [by_end[ref] for ref in done]

    def _finish(self, batch: _Batch, gen, emit: EventCallback) -> JobResult:
        """Read an ended task's stream to its result (every message is there already)."""
        while True:
            result = self._step(batch, gen, emit)
            if result is not None:
                return result

    def _step(self, batch: _Batch, gen, emit: EventCallback) -> Optional[JobResult]:
        """Take one message from a task; the ``JobResult`` when the task is over."""
        import ray

        job: TrainJob = batch.inflight[gen]
        try:
            kind, payload = ray.get(next(gen))
        except StopIteration:
            return self._lost(batch, gen, "killed" if batch.cancelled.is_set() else "failed",
                              "the Ray task ended without a result")
        except ray.exceptions.TaskCancelledError:
            return self._lost(batch, gen, "killed", "cancelled")
        except ray.exceptions.OutOfMemoryError as exc:
            return self._lost(batch, gen, "oom", f"Ray's memory monitor killed it: {_summary(exc)}")
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError, ray.exceptions.ObjectLostError) as exc:
            if batch.cancelled.is_set():  # a forced cancel kills the worker
                return self._lost(batch, gen, "killed", "cancelled")
            return self._lost(batch, gen, "failed", f"the Ray worker or node running it died: {_summary(exc)}")
        except ray.exceptions.RayTaskError as exc:
            raise ComputeError(f"training {job.key} could not run on its Ray worker: {_summary(exc.cause or exc)}") from exc
        except ray.exceptions.RayError as exc:
            raise ComputeError(f"Ray could not run training {job.key}: {_summary(exc)}") from exc
        if kind == "start":
            batch.started[gen] = (time.monotonic(), payload)
            emit("train.start", {"key": job.key, "node": payload})
        elif kind == "lines":
            for stream, line in payload:
                emit("train.line", {"key": job.key, "stream": stream, "line": line})
        elif kind == "result":
            return payload
        return None

    @staticmethod
    def _lost(batch: _Batch, gen, status: str, reason: str) -> JobResult:
        """The result of a task that could not report its own: cancelled (Ray drops what a
        cancelled task yields), or its worker died. Duration and node are what the driver saw."""
        job: TrainJob = batch.inflight[gen]
        began, node = batch.started.get(gen, (None, ""))
        duration = time.monotonic() - began if began is not None else 0.0
        if began is not None:
            reason = f"{reason} after {duration:.1f} s"
        return JobResult(key=job.key, sandbox=SandboxResult(status=status, reason=reason, duration=duration),
                         node=node, gpu_ids=job.limits.gpus)

    def _ship_data(self) -> Optional[list]:
        """Put the visible data into the object store once per executor; a list so that Ray
        hands the reference itself to each task, which fetches it once per node."""
        import ray

        with self._data_lock:  # several calls at once put it once
            if self.data_dir is None or self._data is not None:
                return self._data
            archive, cut = pack_dir(self.data_dir, DATA_CAP_BYTES)
            if cut:
                raise ComputeError(f"the data directory {self.data_dir} cannot be shipped whole by Ray "
                                   f"(at most {DATA_CAP_BYTES >> 30} GiB): {cut}")
            self._data = [ray.put(archive), hashlib.sha256(archive).hexdigest()[:32]]
            return self._data

    def _live(self) -> list[_Batch]:
        with self._lock:
            return list(self._batches)

    def inflight(self) -> int:
        """Tasks submitted and not yet ended, over every call."""
        return sum(len(batch.inflight) for batch in self._live())

    def cancel(self) -> None:
        """Cancel every task under way, of every call (safe from a signal handler: no lock
        waited on for long, Ray is called from a thread). Each ``run`` keeps cancelling until
        its tasks have ended."""
        for batch in self._live():
            batch.cancelled.set()
            refs = batch.cancel_order()
            if refs:
                threading.Thread(target=batch.canceller.tick, args=(refs,), name="progenitor-ray-cancel",
                                 daemon=True).start()

    def close(self) -> None:
        import ray

        for batch in self._live():
            batch.cancelled.set()
            if batch.inflight and ray.is_initialized():
                batch.canceller.tick(batch.cancel_order())
        self._data = None
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()
            self._owns_ray = False


def _check_fits(jobs: list[TrainJob]) -> None:
    """On the local instance a job that asks for more than the machine has would wait forever."""
    import ray

    from progenitor.compute.resources import shortfall

    have = ray.cluster_resources()
    for job in jobs:
        problem = shortfall(job.limits.cpus, job.num_gpus, have, "the local Ray instance")
        if problem:
            raise UserError(problem)


@functools.lru_cache(maxsize=None)
def _remote_task():
    """The Ray remote function, made once per process (Ray exports it to workers once)."""
    import ray

    from progenitor.compute.ray_task import train_task

    return ray.remote(train_task)


def _summary(exc: BaseException) -> str:
    """The last line of an error's text: Ray's remote tracebacks end with ``Type: message``."""
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
