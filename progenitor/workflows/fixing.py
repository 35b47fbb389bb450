"""One fix attempt for each candidate that crashed in training, within its generation.

After the trainer, a candidate that ended ``failed``, ``oom`` or ``timeout`` (not pruned:
early stopping is a verdict, not a crash) goes to the coder's ``fix`` with its status, reason
and log tail. A fix becomes a new candidate of the same generation, ``c<K+i>``, whose commit's
parent is the crashed commit and whose record says ``fix_of``; both stay in the lineage.
The fix is then reviewed (its change and the crashed one together, against the node the crashed
one was built on),
trained and scored like any other candidate::

    trainer ─┬─(a crash not yet fixed)→ fixer → safety_review → trainer → ...
             └→ scorer

The loop is bounded by construction: every crashed candidate is asked once (``fix_tried``),
and a fix is never fixed again, so ``fixer`` runs at most once per generation. A coder that
does not fix (the offline one) answers None and nothing more happens.
"""

from __future__ import annotations

from progenitor.agents.base import Failure
from progenitor.candidate import Candidate, DiffStats
from progenitor.errors import LlmBudgetSpent
from progenitor.run.events import CoderFix
from progenitor.workflows.nodes import COMMIT_FAILURES, save, written
from progenitor.workflows.state import RunContext, State, Update

__all__ = ["CRASHES", "after_training", "fixer", "needs_fix"]

CRASHES = ("failed", "timeout", "oom")


class _NoFix(Exception):
    """The coder had no fix: nothing to commit."""


def needs_fix(cand: Candidate) -> bool:
    return cand.status in CRASHES and cand.train is not None and cand.fix_of is None and not cand.fix_tried


def after_training(state: State) -> str:
    return "fixer" if any(needs_fix(c) for c in state.candidates) else "scorer"


def _fix(ctx: RunContext, crashed: Candidate, k: int) -> tuple[str, Candidate | None]:
    """Ask the coder to fix ``crashed`` as candidate ``k``: (what happened, the fix's record or None)."""
    proposal = crashed.proposal.model_copy(update={
        "k": k, "hypothesis": f"fix of {crashed.key.name} ({crashed.status}): {crashed.proposal.hypothesis}"})
    failure = Failure(candidate=crashed.key.name, status=crashed.status, reason=crashed.reason,
                      log_tail=crashed.train.log_tail)
    fix = Candidate.new(proposal, ctx.run.run_id, crashed.sha, ctx.spec.objective.metric).with_(
        fix_of=crashed.k, parent_name=crashed.key.name, step="debug")

    def change(tree):
        made = ctx.coder.fix(proposal, tree, failure)
        if made is None:
            raise _NoFix()
        return made

    edit = written(change)
    try:
        sha = ctx.lineage.commit_candidate(fix.ref, crashed.sha, edit)
    except _NoFix:
        return "the coder had no fix", None
    except LlmBudgetSpent as exc:
        return "budget", fix.advance("budget", reason=f"not fixed: {exc}")
    except COMMIT_FAILURES as exc:
        return "failed", fix.fail(f"the coder could not fix {crashed.key.name}: {exc}")
    diff = DiffStats(**ctx.lineage.diff_stats(crashed.parent, sha))  # the crash and its fix together
    return "committed", fix.advance("committed", sha=sha, diff=diff, params=crashed.params)


def fixer(ctx: RunContext, state: State) -> Update:
    cands = state.candidates
    k = max(c.k for c in cands) + 1
    out = []
    for cand in cands:
        if needs_fix(cand):
            what, fix = _fix(ctx, cand, k)
            cand = cand.with_(fix_tried=True)
            save(ctx, cand)
            ctx.emit(CoderFix(gen=cand.gen, k=cand.k, fix=k if fix else None, status=what,
                              commit=fix.sha if fix else None, reason=fix.reason if fix else ""))
            if fix is not None:
                save(ctx, fix)
                out.append(fix)
                k += 1
        out.append(cand)
    out.sort(key=lambda c: c.k)
    return Update(candidates=out)
