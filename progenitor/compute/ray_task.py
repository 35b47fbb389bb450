"""The worker side of the Ray executor: one candidate's training as a Ray generator task.

The task runs on whichever node Ray chose. It takes the GPU ids Ray assigned it, unpacks
the run's visible data once per node into a cache directory, and runs ``execute_job`` in a
thread while it streams the command's lines back to the driver. Ray's ``ray.cancel``
arrives as ``KeyboardInterrupt`` in the task's main thread: the task then sets the job's
cancel event, waits for the sandbox to be torn down, and reports the killed result.

Messages yielded, in order: ``("start", node)``, ``("lines", [(stream, line), ...])`` any
number of times, then ``("result", JobResult)``.
"""

from __future__ import annotations

import fcntl
import os
import queue
import shutil
import socket
import tempfile
import threading
from pathlib import Path
from typing import Iterator, Optional

from progenitor.compute.base import JobResult, TrainJob, execute_job, unpack

CACHE_DIR_NAME = "progenitor-ray-data"


def train_task(job: TrainJob, data: Optional[list], cache_dir: Optional[str], batch_seconds: float) -> Iterator[tuple]:
    """The body of the Ray task; ``data`` is ``[ObjectRef of the data archive, its digest]`` or None."""
    import ray

    node = f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()}"
    yield ("start", node)
    gpu_ids = [str(g) for g in ray.get_gpu_ids()]
    if gpu_ids:
        # Exactly the devices Ray granted: the sandbox turns them into CUDA_VISIBLE_DEVICES
        # or Docker device requests, so two candidates never share a GPU by accident.
        job = job.model_copy(update={"limits": job.limits.model_copy(update={"gpus": gpu_ids})})
    data_dir = node_data_dir(data[0], data[1], cache_dir) if data else None

    lines: queue.SimpleQueue = queue.SimpleQueue()
    cancel, finished = threading.Event(), threading.Event()
    box: dict = {}

    def body() -> None:
        try:
            box["result"] = execute_job(job, data_dir, on_line=lambda s, text: lines.put((s, text)), cancel=cancel)
        except BaseException as exc:  # noqa: BLE001 - handed to the task's thread, raised there
            box["error"] = exc
        finally:
            finished.set()

    # Waiting is on an Event, not Thread.join: a KeyboardInterrupt inside join() makes
    # CPython (before 3.13) mark the thread stopped while it still runs.
    worker = threading.Thread(target=body, name=f"progenitor-job-{job.key}", daemon=True)
    try:
        # Started inside the try: ray.cancel may land while start() waits for the thread to
        # run (a wide window on a busy machine), and the sandbox it starts must still be
        # torn down.
        worker.start()
        while not finished.wait(batch_seconds):
            batch = _drain(lines)
            if batch:
                yield ("lines", batch)
    except KeyboardInterrupt:
        pass  # ray.cancel: fall through to tear the sandbox down
    finally:
        # Also reached when the generator is closed early: never leave a sandbox behind.
        _stop(cancel, finished, worker)
    batch = _drain(lines)
    if batch:
        yield ("lines", batch)
    if "error" in box:
        raise box["error"]
    result: JobResult = box["result"]
    yield ("result", result.model_copy(update={"node": node}))


def _stop(cancel: threading.Event, finished: threading.Event, worker: threading.Thread) -> None:
    """Cancel the job and wait until its sandbox is gone, whatever interrupts the wait.

    A thread that was never started has nothing to wait for; one whose start was
    interrupted finds ``cancel`` set and tears its sandbox down at once."""
    while True:
        try:
            if not finished.is_set():
                cancel.set()
            if finished.is_set() or not worker.is_alive():
                return
            finished.wait(1.0)
        except KeyboardInterrupt:
            continue


def _drain(lines: queue.SimpleQueue) -> list[tuple[str, str]]:
    batch = []
    while True:
        try:
            batch.append(lines.get_nowait())
        except queue.Empty:
            return batch


def node_data_dir(ref, digest: str, cache_dir: Optional[str]) -> Path:
    """The run's visible data on this node, unpacked from the object store the first time only."""
    import ray

    root = Path(cache_dir or tempfile.gettempdir()) / CACHE_DIR_NAME
    root.mkdir(parents=True, exist_ok=True)
    target, ready = root / digest, root / f"{digest}.ready"
    if ready.exists():
        return target
    # Several tasks may land on one node at once: one unpacks, the others wait for it.
    with open(root / f"{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.exists():
            partial = Path(tempfile.mkdtemp(prefix=f"{digest}.partial-", dir=root))
            try:
                unpack(ray.get(ref), partial)
                _read_only(partial)
                if target.exists():  # left by a crash between rename and marker
                    _writable(target)
                    shutil.rmtree(target)
                os.rename(partial, target)
            finally:
                shutil.rmtree(partial, ignore_errors=True)
            ready.touch()
    return target


def _writable(path: Path) -> None:
    for p in [path, *path.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)


def _read_only(path: Path) -> None:
    """The cache is shared by every candidate on the node: none may change it for the next."""
    for p in sorted(path.rglob("*"), reverse=True):
        p.chmod(0o555 if p.is_dir() else 0o444)
    path.chmod(0o555)
