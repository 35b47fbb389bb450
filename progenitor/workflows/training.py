"""Training a generation's candidates: through the candidate pool (``workflows.pool``), which
trains them on the executor's slots and scores each the moment its training ends, and waits
for the last score; and early stopping against the champion's curve.

Every training is keyed by run / generation / candidate and its record is written to
``g<gen>/c<k>/train.json`` the moment it finishes, so a resumed run looks results up
instead of training again. Every attempt is charged to the ledger, a cancelled one too.
"""

from __future__ import annotations

from typing import Optional

from progenitor.candidate import Candidate, Champion, TrainRecord
from progenitor.candidate.findings import Finding
from progenitor.candidate.keys import CandidateKey
from progenitor.compute.pruning import PruneConfig, check_curve, read_curve
from progenitor.errors import RunStopped
from progenitor.run.events import TrainCurveUnused
from progenitor.run.rundir import read_json, write_json
from progenitor.workflows.state import RunContext

__all__ = ["prune_config", "train"]


def prune_config(ctx: RunContext, champion: Optional[Champion]) -> Optional[PruneConfig]:
    """Early stopping against the champion's own progress curve, when the task asks for it
    and the curve agrees with the champion's trusted score (``pruning.check_curve``): a
    champion cannot get a better candidate pruned by writing a flattering curve."""
    rule, progress = ctx.spec.train.early_stop, ctx.spec.train.progress
    if rule is None or progress is None or champion is None or not champion.metrics:
        return None  # no champion yet, or one not scored yet (the asynchronous mode's first candidates)
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


def train(ctx: RunContext, items: list[tuple[CandidateKey, str]], champion: Optional[Champion] = None,
          splits: tuple[str, ...] = ("holdout",), seed: int = 0) -> dict[CandidateKey, TrainRecord]:
    """Train every (key, commit) not trained yet, each scored on ``splits`` as soon as its
    training ends (the others still training); returns once the last one is scored, with the
    record of every item that has one. ``champion`` gives the curve that early stopping
    compares against (a candidate's own training only); ``seed``: train with that seed
    (``{seed}``), as a repeat kept apart (``objective.repeats``), scored on the holdout."""
    from progenitor.workflows import pool as pools

    if not items:
        return {}
    pool = pools.of(ctx)
    prune = prune_config(ctx, champion) if not seed else None
    for key, sha in items:
        pool.submit(key, sha, prune, splits if not seed else ("holdout",), seed=seed)
    entries = pool.wait_done([key for key, _ in items], seed=seed)
    pool.check()
    records = {e.key: e.record for e in entries.values() if e.record is not None}
    stopped = ctx.run.stop_requested()
    if stopped and len(records) < len(items):
        raise RunStopped(stopped)
    return records
