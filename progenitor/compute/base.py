"""What the trainer hands an executor, and the worker body every executor runs.

A candidate's tree travels as a tar archive (made by ``git archive``) and its outputs
come back as one, size-capped, so that an executor may run the job on another machine
with no shared filesystem. ``execute_job`` is the whole worker side: unpack, run the
sandbox, pack the outputs.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import tarfile
import tempfile
import threading
from pathlib import Path
from typing import Callable, Iterator, Optional, Protocol

from pydantic import BaseModel, ConfigDict

from progenitor.compute.pruning import PruneConfig
from progenitor.sandbox.base import LineCallback, Limits, SandboxResult, SandboxSpec

OUTPUT_CAP_BYTES = 256 << 20
WATCHER_JOIN_SECONDS = 2.0
"""How long a finished job waits for its progress watcher's last look."""


class TrainJob(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    """``<run>/g<gen>/c<k>``: the side-effect key of this training."""
    command: str
    """Template with ``{data}``, ``{out}`` and ``{tree}``."""
    tree_archive: bytes
    """Tar archive of the candidate's tree."""
    limits: Limits
    env: dict[str, str] = {}
    labels: dict[str, str] = {}
    backend: str = "process"
    """Sandbox backend the worker uses."""
    backend_options: dict = {}
    output_cap_bytes: int = OUTPUT_CAP_BYTES
    progress_file: Optional[str] = None
    """Name, in the outputs directory, of the JSON-lines file of intermediate metrics."""
    num_gpus: float = 0.0
    """GPUs to ask the scheduler for (fractions allowed with Ray); the ids granted go to ``limits.gpus``."""
    prune: Optional[PruneConfig] = None
    """Early stopping against the champion's curve, read from ``progress_file`` while the job runs."""


class JobResult(BaseModel):
    key: str
    sandbox: SandboxResult
    outputs_archive: bytes = b""
    outputs_truncated: bool = False
    """True if outputs were larger than the cap (the archive then holds what fitted)."""
    node: str = ""
    """Where it ran (hostname, or Ray node id)."""
    gpu_ids: list[str] = []
    pruned: Optional[dict] = None
    """Set when early stopping ended the job: step, value, reference."""


EventCallback = Callable[[str, dict], None]
"""Called by an executor with (event type, payload): ``train.start``, ``train.line``, ``train.end``."""


class Executor(Protocol):
    """Runs a batch of training jobs, yielding each result as it finishes."""

    name: str

    def run(self, jobs: list[TrainJob], on_event: Optional[EventCallback] = None) -> Iterator[JobResult]: ...

    def cancel(self) -> None:
        """Stop every job under way; their sandboxes are torn down."""
        ...

    def close(self) -> None: ...


def pack_dir(path: Path, cap_bytes: int = OUTPUT_CAP_BYTES) -> tuple[bytes, bool]:
    """Tar a directory's regular files (symlinks are not followed nor kept), up to a size cap."""
    buf = io.BytesIO()
    total = 0
    truncated = False
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for file in sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink()):
            size = file.stat().st_size
            if total + size > cap_bytes:
                truncated = True
                continue
            total += size
            tar.add(file, arcname=str(file.relative_to(path)), recursive=False)
    return buf.getvalue(), truncated


def unpack(archive: bytes, dest: Path) -> None:
    """Extract a tar archive, refusing links and paths that leave ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r") as tar:
        members = [m for m in tar.getmembers() if m.isfile() or m.isdir()]
        tar.extractall(dest, members=members, filter="data")


def execute_job(
    job: TrainJob,
    data_dir: Optional[Path],
    on_line: Optional[LineCallback] = None,
    cancel: Optional[threading.Event] = None,
    watch: Optional[Callable[[Path], Optional[dict]]] = None,
    workdir: Optional[Path] = None,
) -> JobResult:
    """Unpack the tree, run the job's command in its sandbox, pack the outputs.

    ``watch`` is called about once a second with the outputs directory while the job runs;
    if it returns a dict, the job is stopped and recorded as pruned with that dict.
    """
    from progenitor.sandbox import get_sandbox

    if watch is None and job.prune is not None and job.progress_file:
        watch = job.prune.watcher(job.progress_file)
    base = Path(tempfile.mkdtemp(prefix="progenitor-job-", dir=workdir))
    try:
        # The sandboxed command may run as an unprivileged user: let it into its own dirs.
        os.chmod(base, 0o755)
        tree, out = base / "tree", base / "out"
        unpack(job.tree_archive, tree)
        out.mkdir()
        sandbox = get_sandbox(job.backend, **job.backend_options)
        spec = SandboxSpec(
            command=job.command, tree=tree, out=out, data=data_dir, env=job.env,
            limits=job.limits, labels=job.labels,
        )
        cancel = cancel or threading.Event()  # per job: setting it stops this job only
        if cancel.is_set():  # cancelled while the tree was unpacked: start nothing
            return JobResult(key=job.key, sandbox=SandboxResult(status="killed", reason="cancelled before it started"),
                             node=socket.gethostname(), gpu_ids=job.limits.gpus)
        pruned: dict = {}
        done = threading.Event()
        watcher = None
        if watch is not None:
            watcher = threading.Thread(target=_watch, args=(watch, out, done, cancel, pruned), daemon=True)
            watcher.start()
        try:
            result = sandbox.run(spec, on_line=on_line, cancel=cancel)
        finally:
            done.set()
            if watcher is not None:
                # Bounded: a watcher still importing its pruner (seconds on a busy machine)
                # must not hold up a cancelled job; it only reads the outputs, and finds none.
                watcher.join(WATCHER_JOIN_SECONDS)
        pruned = dict(pruned)
        if pruned:
            result = result.model_copy(update={"status": "killed", "reason": "pruned: " + pruned.get("reason", "behind the champion")})
        archive, truncated = pack_dir(out, job.output_cap_bytes)
        return JobResult(
            key=job.key, sandbox=result, outputs_archive=archive, outputs_truncated=truncated,
            node=socket.gethostname(), gpu_ids=job.limits.gpus, pruned=pruned or None,
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _watch(
    watch: Callable[[Path], Optional[dict]], out: Path, done: threading.Event,
    cancel: threading.Event, pruned: dict,
) -> None:
    prime = getattr(watch, "prime", None)
    if prime is not None:
        prime()  # the pruner's imports, while the candidate starts up, not after its first steps
    while not done.wait(1.0):
        verdict = watch(out)
        if verdict:
            pruned.update(verdict)
            cancel.set()
            return
