"""The trainer: runs candidates' train commands in sandboxes through an executor.

Every training is keyed by run / generation / candidate and its result is written to
``g<gen>/c<k>/train.json`` the moment it finishes, so a resumed run looks results up
instead of training again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from pydantic import BaseModel

from progenitor.agents.safety.findings import Finding
from progenitor.compute.base import JobResult, TrainJob, unpack
from progenitor.compute.pruning import PruneConfig, check_curve, read_curve
from progenitor.errors import RunStopped
from progenitor.runs import read_json, write_json
from progenitor.sandbox.base import Limits
from progenitor.scoring import parse_metrics
from progenitor.workflows.state import RunContext


class TrainItem(BaseModel):
    gen: int
    k: int
    sha: str

    @property
    def key(self) -> str:
        return f"g{self.gen}/c{self.k}"


def limits_for(ctx: RunContext) -> Limits:
    res = ctx.spec.train.resources
    return Limits(
        wall_time=ctx.spec.train.timeout, cpus=res.cpus, memory_bytes=res.memory_bytes,
        processes=res.processes,
    )


def prune_config(ctx: RunContext, champion: Optional[dict]) -> Optional[PruneConfig]:
    """Early stopping against the champion's own progress curve, when the task asks for it
    and the curve agrees with the champion's trusted score (``pruning.check_curve``)."""
    rule, progress = ctx.spec.train.early_stop, ctx.spec.train.progress
    if rule is None or progress is None or champion is None:
        return None
    curve = read_curve(ctx.run.candidate(champion["gen"], champion["k"]) / "out" / progress, rule.metric)
    if not curve:
        return None
    trusted_metric = rule.trusted_metric or rule.metric
    check = check_curve(curve, trusted_metric, (champion.get("metrics") or {}).get(trusted_metric),
                        ctx.spec.scorer.self_report_gap, rule.goal)
    if not check.usable:
        ctx.emit("train.curve_unused", gen=champion["gen"], k=champion["k"],
                 reason=f"early stopping is off for this generation: {check.reason}")
        if check.gap:
            finding = Finding(rule="progress-gap", severity="medium", message=check.reason).model_dump()
            record = ctx.run.add_finding(champion["gen"], champion["k"], finding)
            if record is not None and record.get("sha"):
                ctx.lineage.write_note(record["sha"], record)
        return None
    return PruneConfig(metric=rule.metric, goal=rule.goal, champion=curve, rule=rule.rule, margin=rule.margin,
                       warmup_steps=rule.warmup_steps)


def make_job(ctx: RunContext, item: TrainItem, prune: Optional[PruneConfig] = None) -> TrainJob:
    return TrainJob(
        key=f"{ctx.run.run_id}/{item.key}",
        command=ctx.spec.train.command,
        tree_archive=ctx.lineage.archive(item.sha),
        limits=limits_for(ctx),
        num_gpus=ctx.spec.train.resources.gpus,
        prune=prune,
        labels={"run": ctx.run.run_id, "candidate": item.key, "commit": item.sha[:12]},
        backend=ctx.backend,
        backend_options=ctx.backend_options,
        progress_file=ctx.spec.train.progress,
    )


LOG_TAIL_LINES = 30
LOG_TAIL_BYTES = 8192
LINE_EVENTS_PER_CANDIDATE = 200
"""A candidate that floods its output cannot flood the events log or its git note."""


def log_tail(text: str) -> str:
    """The last lines of a log, each line and the whole capped in size."""
    lines = [line if len(line) <= 500 else line[:500] + " [cut]" for line in text.strip().splitlines()[-LOG_TAIL_LINES:]]
    tail = "\n".join(lines)
    return tail[-LOG_TAIL_BYTES:]


def record_from(result: JobResult, out_dir: Path) -> dict:
    box = result.sandbox
    return {
        "status": "pruned" if result.pruned else box.status,
        "reason": box.reason[:500],
        "exit_code": box.exit_code,
        "duration": round(box.duration, 3),
        "cpu_seconds": round(box.cpu_seconds, 3),
        "backend": box.backend,
        "isolation": box.isolation,
        "node": result.node,
        "gpu_ids": result.gpu_ids,
        "pruned": result.pruned,
        "self_reported": parse_metrics(box.stdout),
        "log_tail": log_tail(box.stdout + "\n" + box.stderr),
        "outputs_truncated": result.outputs_truncated,
        "out": str(out_dir.relative_to(out_dir.parents[2])),  # g<gen>/c<k>/out: notes hold no host paths
    }


def train(ctx: RunContext, items: list[TrainItem], champion: Optional[dict] = None) -> dict[str, dict]:
    """Train every item not trained yet; returns {key: train record} for all items.

    ``champion`` (its gen and k) gives the curve that early stopping compares against."""
    records: dict[str, dict] = {}
    pending: dict[str, TrainItem] = {}
    for item in items:
        done = read_json(ctx.run.candidate(item.gen, item.k) / "train.json")
        if done is not None:
            records[item.key] = done
            ctx.emit("train.cached", gen=item.gen, k=item.k, status=done["status"])
        else:
            pending[f"{ctx.run.run_id}/{item.key}"] = item
    if not pending:
        return records
    prune = prune_config(ctx, champion)
    jobs = {key: make_job(ctx, item, prune) for key, item in pending.items()}
    executor = ctx.executor
    stopped: Optional[str] = None
    for result in executor.run(list(jobs.values()), on_event=_relay(ctx, pending)):
        item = pending[result.key]
        if ctx.ledger is not None:  # every attempt costs, a cancelled one too
            ctx.ledger.record_job(jobs[result.key], result)
            ctx.ledger.save()
        if result.sandbox.status == "killed" and not result.pruned:
            # Cancelled by a stop: not a result. A resume trains this candidate again.
            ctx.emit("train.cancelled", gen=item.gen, k=item.k)
            continue
        records[item.key] = _keep(ctx, item, result)
        stopped = stopped or ctx.run.stop_requested()
        if stopped:
            executor.cancel()
    stopped = stopped or ctx.run.stop_requested()
    if stopped and len(records) < len(items):
        raise RunStopped(stopped)
    return records


def _keep(ctx: RunContext, item: TrainItem, result: JobResult) -> dict:
    """Unpack a finished training's outputs and write its record: from now on it is looked up."""
    cand_dir = ctx.run.candidate(item.gen, item.k)
    out_dir = cand_dir / "out"
    unpack(result.outputs_archive, out_dir)
    record = record_from(result, out_dir)
    write_json(cand_dir / "train.json", record)
    ctx.emit("train.end", gen=item.gen, k=item.k, status=record["status"], reason=record["reason"],
             duration=record["duration"], cpu_seconds=record["cpu_seconds"])
    return record


def _relay(ctx: RunContext, pending: dict[str, TrainItem]):
    """Turn executor events into run events; a flood of output lines is cut per candidate."""
    lines_seen: dict[str, int] = {}

    def on_event(kind: str, payload: dict) -> None:
        item = pending.get(payload.get("key", ""))
        if item is None:
            return
        if kind == "train.start":
            ctx.emit("train.start", gen=item.gen, k=item.k, commit=item.sha)
        elif kind == "train.line":
            seen = lines_seen[item.key] = lines_seen.get(item.key, 0) + 1
            if seen <= LINE_EVENTS_PER_CANDIDATE:
                ctx.emit("train.line", gen=item.gen, k=item.k, stream=payload["stream"], line=payload["line"][:500])
            elif seen == LINE_EVENTS_PER_CANDIDATE + 1:
                ctx.emit("train.line", gen=item.gen, k=item.k, stream=payload["stream"],
                         line=f"[more output not streamed; the last {LOG_TAIL_LINES} lines are kept in the record]")

    return on_event
