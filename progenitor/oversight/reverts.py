"""Reverting a generation afterwards (the auditor's tool, open in every mode).

``revert`` marks the generation's promoted candidate, and every promotion after it (they are
built on it), ``reverted`` in their records and notes, moves ``refs/progenitor/<run>/champion``
back to the last promotion before it (or the baseline), stores the revert and appends it to
the audit log. A run learns of it by itself: ``follow`` is called where a generation starts
(the architect node) and ``blocked`` before anything is promoted, so the next generation (or
a resumed run) builds on the restored champion and never promotes a child of a reverted one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

from progenitor.candidate import Candidate, Champion, Decision
from progenitor.candidate.keys import candidate_name, generation_job, generation_name
from progenitor.errors import UserError
from progenitor.lineage import Lineage, champion_ref
from progenitor.oversight import decide as deciding
from progenitor.oversight.accounts import Identity, require
from progenitor.oversight.store import Revert, run_store
from progenitor.run.events import ChampionRestored, RunRevert
from progenitor.run.rundir import find_run, write_json

__all__ = ["blocked", "follow", "revert"]


def _restored(kept: list[Candidate], meta: dict, base: Optional[str]) -> Champion:
    """The champion to put back, whole (its test-split figures too): the last promotion kept,
    else the human baseline."""
    if kept:
        last = kept[-1]
        return Champion(sha=last.sha, metrics=last.metrics, gen=last.gen, k=last.k, params=last.params,
                        test_metrics=last.test_metrics)
    baseline = dict(meta.get("baseline") or {})
    if not baseline.get("sha") and base:
        baseline = {**baseline, "sha": base}
    if not baseline.get("sha"):
        raise UserError("the run's baseline is not known (its run directory lacks it); cannot revert")
    return Champion.model_validate({"metrics": {}, **baseline})


def revert(run_id: str, gen: int, comment: str, by: Union[None, str, Identity] = None, repo: Optional[Path] = None,
           surface: str = "api") -> Revert:
    """Undo generation ``gen``'s promotion (and every later one), in ``by``'s name (an
    ``Identity`` must be an admin; default: the OS user); returns the stored revert."""
    from progenitor.lineage.records import read_lineage

    if not comment.strip():
        raise UserError("revert needs a comment that says why")
    run = find_run(run_id, repo)
    lineage = read_lineage(run_id, run.repo_root)
    promoted = [c for c in lineage.promoted() if c.sha]
    if not any(c.gen == gen for c in promoted):
        gens = ", ".join(generation_name(c.gen) for c in promoted) or "none"
        raise UserError(f"generation {gen} of run {run_id} has no promoted candidate to revert (promoted now: {gens})")
    affected = [c for c in promoted if c.gen >= gen]
    restored = _restored([c for c in promoted if c.gen < gen], run.meta, lineage.base)
    if isinstance(by, Identity):
        require(by, "revert")
    actor = deciding.actor(by)
    store = run_store(run)
    # The store's unique key comes first: of two reverts sent at once, one is applied.
    done = store.add_revert(run_id, gen, actor, comment, [c.sha for c in affected], restored.model_dump())
    git = Lineage(run.repo_root)
    where = f"{'baseline' if not restored.gen else candidate_name(restored.gen, restored.k)} {restored.sha[:10]}"
    for cand in affected:
        why = f"generation {gen} reverted by {actor}; champion restored to {where}"
        cand = cand.with_(decision=Decision(verdict="reverted", by=actor, reason=why, comment=comment))
        git.write_note(cand.sha, cand.record())
        record = run.record_file(cand.gen, cand.k)
        if record.exists():
            write_json(record, cand.record())
    git.set_ref(champion_ref(run_id), restored.sha, f"progenitor: g{gen} reverted by {actor}")
    store.audit_log(run.repo_root).append(
        key=f"{generation_job(run_id, gen)}/revert", action="revert", actor=actor, run=run_id, gen=gen,
        commit=next(c.sha for c in affected if c.gen == gen),
        payload={"reverted": [c.key.name for c in affected], "restored": restored.sha}, comment=comment,
        surface=surface,
    )
    _update_summary(run, restored)
    run.emit(RunRevert(gen=gen, by=actor, comment=comment, restored=restored.sha,
                       reverted=[c.key.name for c in affected]))
    return done


def _update_summary(run: Any, restored: Champion) -> None:
    """A finished run's summary names the champion: it is the restored one now."""
    meta = run.meta
    summary = meta.get("summary")
    if summary:
        metric = summary.get("metric")
        summary = {**summary, "champion_commit": restored.sha,
                   "champion": restored.metrics.get(metric, summary.get("champion"))}
    run.update_meta(summary=summary, reverted=[*meta.get("reverted", []), restored.sha])


def _reverts(ctx: Any) -> list[Revert]:
    return ctx.store.reverts(ctx.run.run_id)


def follow(ctx: Any, champion: Optional[Champion], gen: int) -> Optional[Champion]:
    """The champion to build on after the reverts made so far, if one moved it (else None)."""
    reverts = _reverts(ctx)
    if not reverts or champion is None or champion.sha not in {sha for r in reverts for sha in r.reverted}:
        return None
    restored = Champion.model_validate(reverts[-1].restored)
    ctx.emit(ChampionRestored(gen=gen, commit=restored.sha, by=reverts[-1].by))
    return restored


def blocked(ctx: Any, parent: Optional[str]) -> Optional[str]:
    """Why a candidate built on ``parent`` may not be promoted (its parent was reverted), if so."""
    for r in _reverts(ctx):
        if parent in r.reverted:
            return f"it was built on {parent[:10]}, whose promotion {r.by} reverted"
    return None
