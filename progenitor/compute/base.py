"""What the trainer hands an executor, and the worker body every executor runs.

A candidate's tree travels as a tar archive (made by ``git archive``) and its outputs
come back as one, capped and sanitised (``outputs``), so that an executor may run the job
on another machine with no shared filesystem. ``execute_job`` is the whole worker side:
a job directory held to the disk quota (``jobdir``), unpack, run the sandbox, pack the outputs.
"""

from __future__ import annotations

import errno
import io
import socket
import tarfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, Optional, Protocol, Union

from pydantic import BaseModel, ConfigDict

from progenitor.compute.jobdir import JobDir, daemon_shares_our_mounts, job_dir
from progenitor.compute.outputs import pack_outputs
from progenitor.compute.pruning import PruneConfig
from progenitor.sandbox.base import Limits, LineCallback, SandboxResult, SandboxSpec

OUTPUT_CAP_BYTES = 256 << 20
OUTPUT_MAX_ENTRIES = 10_000
"""Most files and directories brought back from one candidate's outputs."""
PACK_SECONDS = 120.0
"""Most seconds spent packing one candidate's outputs (and as much again unpacking them)."""
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
    """Most bytes of outputs brought back, tar headers included."""
    output_max_entries: int = OUTPUT_MAX_ENTRIES
    """Most files and directories of outputs brought back."""
    outputs_first: list[str] = []
    """Outputs packed before any other (what the scorer reads): a filler cannot crowd them out,
    and one that does not fit the cap fails the job, with that reason."""
    disk_files: Optional[int] = None
    """Most files and directories the tree and outputs may hold while the job runs (with
    ``limits.disk_bytes``: the disk quota)."""
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
    """True if a cap left some outputs out (the archive then holds what fitted)."""
    outputs_note: str = ""
    """What was cut or dropped from the outputs, in words ('' when nothing was)."""
    node: str = ""
    """Where it ran (hostname, or Ray node id)."""
    gpu_ids: list[str] = []
    pruned: Optional[dict] = None
    """Set when early stopping ended the job: step, value, reference."""


EventCallback = Callable[[str, dict], None]
"""Called by an executor with (event type, payload): ``train.start``, ``train.line``, ``train.end``."""


class Executor(Protocol):
    """Runs a batch of training jobs, yielding each result as it finishes.

    ``run`` may be called from several threads at once, each call with its own jobs (the
    candidate pool hands each training its own call, so that a slot is refilled the moment it
    frees); ``cancel`` stops the jobs of every call under way."""

    name: str

    def run(self, jobs: list[TrainJob], on_event: Optional[EventCallback] = None) -> Iterator[JobResult]: ...

    def slots(self, cpus: float, gpus: float = 0.0) -> int:
        """How many jobs asking for ``cpus`` and ``gpus`` each can run at once."""
        ...

    def cancel(self) -> None:
        """Stop every job under way; their sandboxes are torn down."""
        ...

    def close(self) -> None: ...


def slots_of(executor: object, cpus: float, gpus: float = 0.0) -> int:
    """``executor.slots(...)``, or 1 for an executor that does not say (a lab's own, written
    before the method existed): one job at a time is always safe."""
    slots = getattr(executor, "slots", None)
    return max(1, int(slots(cpus, gpus))) if callable(slots) else 1


def pack_dir(path: Path, cap_bytes: int = OUTPUT_CAP_BYTES) -> tuple[bytes, str]:
    """Tar a directory's regular files and directories (links, devices, ``.git`` never), up to
    a size cap; returns the archive and what was cut ('' when nothing was)."""
    packed = pack_outputs(path, cap_bytes)
    return packed.archive, packed.cut


def tree_archive(files: dict[str, Union[str, bytes]]) -> bytes:
    """A tar archive of a tree made of ``{path: content}`` (files 0644), as a job's
    ``tree_archive``: for trees written in code (the doctor's probe, benches, tests)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def unpack(archive: bytes, dest: Path) -> None:
    """Extract a trusted-shape archive (a git archive of a tree, the run's data), refusing
    links and paths that leave ``dest``. Outputs use ``outputs.unpack_outputs``."""
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
    if it returns a dict, the job is stopped and recorded as pruned with that dict. The disk
    quota is watched as well: a job that reaches it is stopped with the status ``disk``.
    """
    if watch is None and job.prune is not None and job.progress_file:
        watch = job.prune.watcher(job.progress_file)
    tmpfs = job.backend != "docker" or daemon_shares_our_mounts("dockerd")
    with job_dir(workdir, job.limits.disk_bytes, job.disk_files, tmpfs=tmpfs) as jd:
        try:
            unpack(job.tree_archive, jd.tree)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                raise
            reason = f"its tree does not fit its disk quota ({exc.strerror or exc})"
            return JobResult(key=job.key, sandbox=SandboxResult(status="disk", reason=reason),
                             node=socket.gethostname(), gpu_ids=job.limits.gpus)
        cancel = cancel or threading.Event()  # per job: setting it stops this job only
        if cancel.is_set():  # cancelled while the tree was unpacked: start nothing
            return JobResult(key=job.key, sandbox=SandboxResult(status="killed", reason="cancelled before it started"),
                             node=socket.gethostname(), gpu_ids=job.limits.gpus)
        result, pruned = _run_watched(job, jd, data_dir, on_line, cancel, watch)
        packed = pack_outputs(jd.out, job.output_cap_bytes, job.output_max_entries, tuple(job.outputs_first),
                              PACK_SECONDS)
    note = _outputs_note(packed.cut, packed.dropped)
    if packed.missing and result.ok:
        result = result.model_copy(update={"status": "failed", "reason": (
            f"outputs cut: {', '.join(packed.missing)} did not fit the output cap")})
    if note:
        result = result.model_copy(update={"reason": "; ".join(r for r in (result.reason, note) if r)})
    return JobResult(
        key=job.key, sandbox=result, outputs_archive=packed.archive, outputs_truncated=bool(packed.cut),
        outputs_note=note, node=socket.gethostname(), gpu_ids=job.limits.gpus, pruned=pruned or None,
    )


def _run_watched(job: TrainJob, jd: JobDir, data_dir: Optional[Path], on_line: Optional[LineCallback],
                 cancel: threading.Event, watch: Optional[Callable[[Path], Optional[dict]]]
                 ) -> tuple[SandboxResult, dict]:
    """The sandbox run, with the pruning and disk-quota watchers beside it; (result, pruned)."""
    from progenitor.sandbox import get_sandbox

    sandbox = get_sandbox(job.backend, **job.backend_options)
    spec = SandboxSpec(command=job.command, tree=jd.tree, out=jd.out, data=data_dir, env=job.env,
                       limits=job.limits, labels=job.labels)
    verdicts: dict = {}
    done = threading.Event()
    watchers = [threading.Thread(target=_watch_disk, args=(jd, done, cancel, verdicts), daemon=True)]
    if watch is not None:
        watchers.append(threading.Thread(target=_watch, args=(watch, jd.out, done, cancel, verdicts), daemon=True))
    for thread in watchers:
        thread.start()
    try:
        result = sandbox.run(spec, on_line=on_line, cancel=cancel)
    finally:
        done.set()
        for thread in watchers:
            # Bounded: a watcher still importing its pruner (seconds on a busy machine)
            # must not hold up a cancelled job; it only reads the outputs.
            thread.join(WATCHER_JOIN_SECONDS)
    verdicts = dict(verdicts)
    # Reached at any time: its later writes were refused, whether or not it noticed (and ended by itself).
    disk = verdicts.get("disk") or jd.over()
    if disk and result.status != "timeout":
        how = "killed" if verdicts.get("disk") else "ended"
        return result.model_copy(update={"status": "disk", "reason": f"{disk}; {how} after {result.duration:.1f} s"}), {}
    pruned = verdicts.get("pruned") or {}
    if pruned:
        result = result.model_copy(update={"status": "killed", "reason": "pruned: " + pruned.get("reason", "behind the champion")})
    return result, pruned


def _outputs_note(cut: str, dropped: int) -> str:
    dropped_note = f"outputs: dropped {dropped} link(s), device(s), fifo(s) or .git path(s)" if dropped else ""
    return "; ".join(n for n in (cut, dropped_note) if n)


def _watch_disk(jd: JobDir, done: threading.Event, cancel: threading.Event, verdicts: dict) -> None:
    while not done.wait(jd.poll_seconds):
        reason = jd.over()
        if reason:
            verdicts["disk"] = reason
            cancel.set()
            return


def _watch(
    watch: Callable[[Path], Optional[dict]], out: Path, done: threading.Event,
    cancel: threading.Event, verdicts: dict,
) -> None:
    prime = getattr(watch, "prime", None)
    if prime is not None:
        prime()  # the pruner's imports, while the candidate starts up, not after its first steps
    while not done.wait(1.0):
        verdict = watch(out)
        if verdict:
            verdicts["pruned"] = verdict
            cancel.set()
            return
