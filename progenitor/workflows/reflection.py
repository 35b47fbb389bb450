"""Lessons: after a generation is decided, what each of its candidates taught, written into its
record (and so its git note, which travels with the lineage) before the note is published.

The architect writes them when it can (``reflect``: the LLM architect asks its model; the search
computes them from the numbers); an architect without ``reflect``, or whose reflection fails, gets
the computed ones (``agents.architect.lessons``). Each candidate is compared with the node it was
built on, with the paired test when the scorer gives per-example scores for both.
"""

from __future__ import annotations

from typing import Optional

from progenitor.agents.architect import lessons as computed
from progenitor.agents.base import Outcome
from progenitor.candidate import Candidate, Champion, Lesson
from progenitor.errors import LlmBudgetSpent, LlmUnavailable, ModelBehaviorError
from progenitor.run.events import ArchitectLesson, RunWarning
from progenitor.workflows import archive
from progenitor.workflows.state import RunContext, State

__all__ = ["outcome", "with_lessons"]


def _node(ctx: RunContext, state: State, sha: str) -> Optional[Champion]:
    """The node at ``sha`` as a champion-like model (its numbers), or None."""
    for champion in (state.champion, state.baseline):
        if champion is not None and champion.sha == sha:
            return champion
    for cand in archive.records(ctx):
        if cand.sha == sha and cand.status == "scored":
            return Champion(sha=sha, metrics=cand.metrics, gen=cand.gen, k=cand.k, params=cand.params,
                            repeats=cand.repeats)
    return None


def outcome(ctx: RunContext, state: State, cand: Candidate, cands: list[Candidate]) -> Outcome:
    """What a lesson is written from: the candidate's result and its parent's."""
    from progenitor.workflows.evidence import versus

    parent = _node(ctx, state, archive.built_on(cand, cands))
    metric = ctx.spec.objective.metric
    test = versus(ctx, cand.key, parent) if parent is not None and cand.status == "scored" else None
    return Outcome(
        name=cand.key.name, status=cand.status, hypothesis=cand.proposal.hypothesis, plan=cand.proposal.plan,
        params=dict(cand.params or cand.proposal.params), value=cand.value if cand.status == "scored" else None,
        reason=cand.reason, verdict=cand.decision.verdict if cand.decision else "",
        parent=cand.parent_name or (f"g{parent.gen}/c{parent.k}" if parent else ""),
        parent_value=parent.metrics.get(metric) if parent else None,
        parent_params=dict(parent.params) if parent else {}, versus_parent=test,
    )


def _written(ctx: RunContext, gen: int, outcomes: list[Outcome]) -> list[Optional[Lesson]]:
    """The architect's own lessons, one per outcome (None where it gave none)."""
    reflect = getattr(ctx.architect, "reflect", None)
    if reflect is None:
        return [None] * len(outcomes)
    try:  # one call with its own budget of tries (``llm.session``), not asked again here; a stop asked
        got = reflect(gen, outcomes)  # for (``LlmStopAsked``) ends the node, and the run, at the graph's edge
    except (ModelBehaviorError, LlmBudgetSpent, LlmUnavailable) as exc:  # lessons are computed instead: no reason to stop
        ctx.emit(RunWarning(message=f"g{gen}: the architect wrote no lessons (they are computed instead): {exc}"))
        return [None] * len(outcomes)
    got = list(got or [])
    return [got[i] if i < len(got) else None for i in range(len(outcomes))]


def with_lessons(ctx: RunContext, state: State, cands: list[Candidate]) -> list[Candidate]:
    """The generation's candidates, each with its lesson (one written before, on a resume, is kept)."""
    todo = [c for c in cands if c.lesson is None]
    if not todo:
        return cands
    outcomes = [outcome(ctx, state, c, cands) for c in todo]
    written = _written(ctx, state.generation, outcomes)
    goal = ctx.spec.objective.goal
    lessons = {}
    for cand, out, lesson in zip(todo, outcomes, written):
        lesson = lesson or computed.compute(out, goal)
        lessons[cand.k] = lesson.model_copy(update={"parent": lesson.parent or out.parent})
        ctx.emit(ArchitectLesson(gen=cand.gen, k=cand.k, verdict=lesson.verdict, text=lesson.text, next=lesson.next,
                                 by=lesson.by))
    return [c.with_(lesson=lessons[c.k]) if c.k in lessons else c for c in cands]
