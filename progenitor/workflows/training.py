"""Training candidates through the run's executor: the side of the trainer that touches a run.

Every training is keyed by run / generation / candidate and its record is written to
``g<gen>/c<k>/train.json`` the moment it finishes, so a resumed run looks results up
instead of training again. Every attempt is charged to the ledger, a cancelled one too.
"""

from __future__ import annotations

from typing import Optional

from progenitor.candidate import Candidate, Champion, TrainRecord
from progenitor.candidate.findings import Finding
from progenitor.candidate.keys import CandidateKey
from progenitor.compute.base import PACK_SECONDS, JobResult, TrainJob
from progenitor.compute.jobs import LINE_EVENTS_PER_CANDIDATE, LOG_TAIL_LINES, make_job, record_from
from progenitor.compute.outputs import unpack_outputs
from progenitor.compute.pruning import PruneConfig, check_curve, read_curve
from progenitor.errors import RunStopped
from progenitor.run.events import TrainCached, TrainCancelled, TrainCurveUnused, TrainEnd, TrainLine, TrainStart
from progenitor.run.rundir import read_json, write_json
from progenitor.task.flags import train_command
from progenitor.workflows.state import RunContext

__all__ = ["prune_config", "train"]


def prune_config(ctx: RunContext, champion: Optional[Champion]) -> Optional[PruneConfig]:
    """Early stopping against the champion's own progress curve, when the task asks for it
    and the curve agrees with the champion's trusted score (``pruning.check_curve``): a
    champion cannot get a better candidate pruned by writing a flattering curve."""
    rule, progress = ctx.spec.train.early_stop, ctx.spec.train.progress
    if rule is None or progress is None or champion is None:
        return None
    curve = read_curve(ctx.run.outputs(champion.gen, champion.k) / progress, rule.metric)
    if not curve:
        return None
    trusted_metric = rule.trusted_metric or rule.metric
    check = check_curve(curve, trusted_metric, champion.metrics.get(trusted_metric), ctx.spec.scorer.self_report_gap,
                        rule.goal)
    if not check.usable:
        ctx.emit(TrainCurveUnused(gen=champion.gen, k=champion.k,
                                  reason=f"early stopping is off for this generation: {check.reason}"))
        if check.gap:
            _add_finding(ctx, champion, Finding(rule="progress-gap", severity="medium", message=check.reason))
        return None
    return PruneConfig(metric=rule.metric, goal=rule.goal, champion=curve, rule=rule.rule, margin=rule.margin,
                       warmup_steps=rule.warmup_steps)


def _add_finding(ctx: RunContext, champion: Champion, finding: Finding) -> None:
    """Add a finding to a (finished) champion's record and git note, once per rule."""
    path = ctx.run.record_file(champion.gen, champion.k)
    data = read_json(path)
    if data is None:
        return  # the baseline has no candidate record
    cand = Candidate.from_record(data)
    if any(f.rule == finding.rule for f in cand.findings):
        return
    cand = cand.with_(findings=[*cand.findings, finding])
    write_json(path, cand.record())
    if cand.sha:
        ctx.lineage.write_note(cand.sha, cand.record())


def train(ctx: RunContext, items: list[tuple[CandidateKey, str]], champion: Optional[Champion] = None
          ) -> dict[CandidateKey, TrainRecord]:
    """Train every (key, commit) not trained yet; returns the record of every item that has one.

    ``champion`` gives the curve that early stopping compares against."""
    records: dict[CandidateKey, TrainRecord] = {}
    pending: dict[str, tuple[CandidateKey, str]] = {}
    for key, sha in items:
        done = read_json(ctx.run.train_file(key.gen, key.k))
        if done is not None:
            records[key] = TrainRecord.model_validate(done)
            ctx.emit(TrainCached(gen=key.gen, k=key.k, status=records[key].status))
        else:
            pending[key.job] = (key, sha)
    if not pending:
        return records
    prune = prune_config(ctx, champion)
    jobs: dict[str, TrainJob] = {}
    for job, (key, sha) in list(pending.items()):
        command, problem = train_command(ctx.spec, lambda path, sha=sha: ctx.lineage.show(sha, path))
        if problem:  # its values file cannot give its flags: it fails without running
            records[key] = _refused(ctx, key, command, problem)
            del pending[job]
            continue
        jobs[job] = make_job(ctx.spec, job, ctx.lineage.archive(sha),
                             {"run": key.run, "candidate": key.name, "commit": sha[:12]},
                             ctx.backend, ctx.backend_options, prune, command=command)
    stopped: Optional[str] = None
    for result in ctx.executor.run(list(jobs.values()), on_event=_relay(ctx, pending)):
        key, _ = pending[result.key]
        if ctx.ledger is not None:  # every attempt costs, a cancelled one too
            ctx.ledger.record_job(jobs[result.key], result)
            ctx.ledger.save()
        if result.sandbox.status == "killed" and not result.pruned:
            # Cancelled by a stop: not a result. A resume trains this candidate again.
            ctx.emit(TrainCancelled(gen=key.gen, k=key.k))
            continue
        records[key] = _keep(ctx, key, result, jobs[result.key].command)
        stopped = stopped or ctx.run.stop_requested()
        if stopped:
            ctx.executor.cancel()
    stopped = stopped or ctx.run.stop_requested()
    if stopped and len(records) < len(items):
        raise RunStopped(stopped)
    return records


def _keep(ctx: RunContext, key: CandidateKey, result: JobResult, command: str) -> TrainRecord:
    """Unpack a finished training's outputs and write its record: from now on it is looked up."""
    out_dir = ctx.run.outputs(key.gen, key.k)
    unpack_outputs(result.outputs_archive, out_dir, seconds=PACK_SECONDS)
    record = record_from(result, out=out_dir.relative_to(ctx.run.path).as_posix())  # records hold no host paths
    record = record.model_copy(update={"command": command})
    write_json(ctx.run.train_file(key.gen, key.k), record.model_dump(mode="json"))
    ctx.emit(TrainEnd(gen=key.gen, k=key.k, status=record.status, reason=record.reason,
                      duration=record.duration, cpu_seconds=record.cpu_seconds))
    return record


def _refused(ctx: RunContext, key: CandidateKey, command: str, problem: str) -> TrainRecord:
    """The record of a commit that could not be given its command: failed, nothing ran."""
    record = TrainRecord(status="failed", reason=f"not trained: {problem}"[:500], command=command)
    write_json(ctx.run.train_file(key.gen, key.k), record.model_dump(mode="json"))
    ctx.emit(TrainEnd(gen=key.gen, k=key.k, status=record.status, reason=record.reason, duration=0.0, cpu_seconds=0.0))
    return record


def _relay(ctx: RunContext, pending: dict[str, tuple[CandidateKey, str]]):
    """Turn executor events into run events; a flood of output lines is cut per candidate."""
    lines_seen: dict[str, int] = {}

    def on_event(kind: str, payload: dict) -> None:
        item = pending.get(payload.get("key", ""))
        if item is None:
            return
        key, sha = item
        if kind == "train.start":
            ctx.emit(TrainStart(gen=key.gen, k=key.k, commit=sha))
        elif kind == "train.line":
            seen = lines_seen[key.job] = lines_seen.get(key.job, 0) + 1
            if seen <= LINE_EVENTS_PER_CANDIDATE:
                ctx.emit(TrainLine(gen=key.gen, k=key.k, stream=payload["stream"], line=payload["line"][:500]))
            elif seen == LINE_EVENTS_PER_CANDIDATE + 1:
                ctx.emit(TrainLine(gen=key.gen, k=key.k, stream=payload["stream"],
                                   line=f"[more output not streamed; the last {LOG_TAIL_LINES} lines are kept in the record]"))

    return on_event
