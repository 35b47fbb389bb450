"""What the architect is told each generation, gathered from the run: the lineage journal (every
earlier candidate with its metrics, training time and the diff it committed), the baseline beside
the champion, how much one holdout example and the choice among many candidates can move a
score, and the budget left. Also the fingerprints of the changes tried, so that a change tried
before is not trained again, however it was worded."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from progenitor.agents.base import JournalEntry, ProposeContext
from progenitor.candidate import Candidate
from progenitor.workflows import archive
from progenitor.workflows.state import RunContext, State

__all__ = ["DIFF_CHARS", "DIFF_CHARS_EACH", "budget_left", "fingerprints", "journal", "propose_context"]

DIFF_CHARS_EACH = 1_500
"""Most of one candidate's diff shown to the architect."""
DIFF_CHARS = 12_000
"""Most diff text in one architect prompt, newest candidates first; older ones go without."""


def _diff(ctx: RunContext, cand: Candidate, room: int) -> str:
    if not cand.sha or room <= 0:
        return ""
    try:
        text = ctx.lineage.diff_text(cand.parent, cand.sha)
    except Exception:  # noqa: BLE001 - a commit gone from the repository: the plan still says what it was
        return ""
    cut = min(DIFF_CHARS_EACH, room)
    return text if len(text) <= cut else text[:cut] + f"\n[... {len(text) - cut} more characters of the diff not shown]"


def journal(ctx: RunContext, before: int) -> list[JournalEntry]:
    """Every candidate of the generations before ``before``, from their records, oldest first, each
    with its metrics, training time, lesson and (room allowing) its diff."""
    cands = archive.records(ctx, before=before)
    diffs: dict[str, str] = {}
    room = DIFF_CHARS
    for cand in reversed(cands):  # the newest get the diff budget first
        diffs[cand.key.name] = _diff(ctx, cand, room)
        room -= len(diffs[cand.key.name])
    return [archive.entry(c).model_copy(update={"diff": diffs.get(c.key.name, "")}) for c in cands]


def fingerprints(ctx: RunContext, before: int) -> dict[str, str]:
    """Fingerprint of each change committed before generation ``before`` -> the first candidate that made it."""
    seen: dict[str, str] = {}
    for cand in archive.records(ctx, before=before):
        if cand.diff is not None and cand.diff.fingerprint and cand.fix_of is None:
            seen.setdefault(cand.diff.fingerprint, cand.key.name)
    return seen


def budget_left(ctx: RunContext, gen: int) -> list[str]:
    """What is left of the run's budget, in words (the generations, and each cap that is set)."""
    budget = ctx.spec.budget
    lines = [f"this is generation {gen} of {ctx.spec.generations_total}"]
    if ctx.ledger is None:
        return lines
    spent = ctx.ledger.totals()
    for cap, used, unit in ((budget.dollars, spent.dollars, "LLM dollars"), (budget.cpu_hours, spent.cpu_hours, "CPU-hours"),
                            (budget.gpu_hours, spent.gpu_hours, "GPU-hours"),
                            (budget.wall_hours, spent.wall_hours, "wall-clock hours")):
        if cap is not None:
            lines.append(f"{max(cap - used, 0):.3g} of {cap:g} {unit} left")
    return lines


def _luck(ctx: RunContext, state: State, gen: int) -> tuple[Optional[int], Optional[float]]:
    """(holdout examples, the selection-luck bound once this generation's candidates are compared too)."""
    from progenitor.evaluation.honesty import holdout_size, selection_luck

    n = holdout_size(ctx.spec, ctx.run.data)
    span = ctx.spec.objective.range
    if n is None or span is None:
        return n, None
    scored = sum(h.counts.get("scored", 0) for h in state.history)
    compared = 1 + scored + ctx.spec.per_generation
    return n, selection_luck(n, compared, span[1] - span[0])


def propose_context(ctx: RunContext, state: State, gen: int, tree: Path) -> ProposeContext:
    """All the architect is told for generation ``gen`` (``tree``: a checkout of the champion)."""
    champion = state.champion
    count = ctx.spec.per_generation
    holdout, luck = _luck(ctx, state, gen)
    return ProposeContext(gen=gen, count=count, spec=ctx.spec, champion_params=champion.params,
                          champion_metrics=champion.metrics, champion_tree=tree, journal=journal(ctx, gen),
                          feedback=state.feedback, baseline_metrics=state.baseline.metrics if state.baseline else {},
                          holdout_size=holdout, selection_luck=luck, budget_left=budget_left(ctx, gen),
                          parents=archive.parents_for(ctx, state, gen, count), earlier=archive.earlier_runs(ctx),
                          pending=[c.key.name for c in state.flow.inflight])
