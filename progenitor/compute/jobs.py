"""The trainer's pure parts: a candidate's sandbox limits, its training job, and the record
its result leaves. The trainer node (``workflows/training.py``) runs the jobs through an
executor and keeps the records; nothing here touches a run.
"""

from __future__ import annotations

from typing import Optional

from progenitor.boundary.metrics import parse_metrics
from progenitor.candidate.training import TrainRecord
from progenitor.compute.base import JobResult, TrainJob
from progenitor.compute.pruning import PruneConfig
from progenitor.sandbox.base import Limits
from progenitor.task.placeholders import bind
from progenitor.task.spec import TaskSpec

__all__ = ["LINE_EVENTS_PER_CANDIDATE", "LOG_TAIL_LINES", "TrainRecord", "limits_for", "log_tail", "make_job",
           "record_from"]

LOG_TAIL_LINES = 30
LOG_TAIL_BYTES = 8192
LINE_EVENTS_PER_CANDIDATE = 200
"""A candidate that floods its output cannot flood the events log or its git note."""


def limits_for(spec: TaskSpec) -> Limits:
    res = spec.train.resources
    return Limits(
        wall_time=spec.train.timeout, cpus=res.cpus, memory_bytes=res.memory_bytes,
        processes=res.processes, disk_bytes=res.disk_bytes,
    )


def make_job(spec: TaskSpec, key: str, tree_archive: bytes, labels: dict[str, str], backend: str,
             backend_options: dict, prune: Optional[PruneConfig] = None, command: Optional[str] = None,
             seed: int = 0) -> TrainJob:
    """The job that trains one commit; ``command``: its own (``task.flags.train_command``), else
    ``train.command``. ``seed``: the training's seed (``{seed}`` in the command, ``PROGENITOR_SEED``
    in its environment): 0 for a candidate's own training, 1..N-1 for its repeats (``objective.repeats``)."""
    return TrainJob(
        key=key,
        command=bind(command or spec.train.command, "seed", seed),
        env={"PROGENITOR_SEED": str(seed)},
        tree_archive=tree_archive,
        limits=limits_for(spec),
        num_gpus=spec.train.resources.gpus,
        prune=prune,
        labels=labels,
        backend=backend,
        backend_options=backend_options,
        progress_file=spec.train.progress,
        disk_files=spec.train.resources.files,
        output_cap_bytes=spec.train.resources.output_bytes,
        # What the scorer needs is packed first: a filler sorting before it cannot push it out.
        outputs_first=[f for f in (*_scored_files(spec), spec.train.progress) if f],
    )


def _scored_files(spec: TaskSpec) -> list[str]:
    """What scoring reads of a candidate's outputs: its weights (``evaluate: model``) or predictions."""
    if spec.predict is not None:
        return list(spec.predict.artifacts)
    expect = spec.scorer.predictions
    return [expect.file] if expect is not None else []


def log_tail(text: str) -> str:
    """The last lines of a log, each line and the whole capped in size."""
    lines = [line if len(line) <= 500 else line[:500] + " [cut]" for line in text.strip().splitlines()[-LOG_TAIL_LINES:]]
    tail = "\n".join(lines)
    return tail[-LOG_TAIL_BYTES:]


def record_from(result: JobResult, out: str) -> TrainRecord:
    """The record of a finished job whose outputs were unpacked at ``out`` (run-relative)."""
    box = result.sandbox
    return TrainRecord(
        status="pruned" if result.pruned else box.status,
        reason=box.reason[:500],
        exit_code=box.exit_code,
        duration=round(box.duration, 3),
        cpu_seconds=round(box.cpu_seconds, 3),
        memory_peak=box.memory_peak,
        backend=box.backend,
        isolation=box.isolation,
        node=result.node,
        gpu_ids=result.gpu_ids,
        pruned=result.pruned,
        self_reported=parse_metrics(box.stdout),
        log_tail=log_tail(box.stdout + "\n" + box.stderr),
        outputs_truncated=result.outputs_truncated,
        out=out,
    )
