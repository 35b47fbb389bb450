"""Lessons computed from a generation's results: what each candidate taught, in a line.

The offline search cannot write prose, but its lessons can still say what a reader of the
lineage (a person, an LLM architect in a later run) needs: whether the change beat the node it
was built on, by how much, whether that is above the noise, and which way to go next. The LLM
architect writes its own lessons (``LlmArchitect.reflect``) and falls back on these.
"""

from __future__ import annotations

from typing import Any

from progenitor.agents.base import Outcome
from progenitor.candidate import Lesson

__all__ = ["compute", "describe_changes"]


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def describe_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """``["lr 0.003->0.01 (up)", "activation relu->gelu"]``: the knobs that moved."""
    out = []
    for name, value in after.items():
        old = before.get(name)
        if old == value:
            continue
        way = ""
        if isinstance(old, (int, float)) and isinstance(value, (int, float)) and not isinstance(value, bool):
            way = " (up)" if value > old else " (down)"
        out.append(f"{name} {_fmt(old)}->{_fmt(value)}{way}")
    return out


def _next(changes: list[str], better: bool) -> str:
    if not changes:
        return "the same values again measure only the noise: change something"
    moves = ", ".join(changes[:4])
    if better:
        return f"build on it: push the same way ({moves}) or combine it with other gains"
    return f"step back from {moves}, or try the other direction"


def compute(outcome: Outcome, goal: str) -> Lesson:
    """The lesson of one candidate, from its result and its parent's."""
    changes = describe_changes(outcome.parent_params, outcome.params)
    what = ", ".join(changes[:4]) or "no change of values"
    base = dict(parent=outcome.parent, by="search")
    if outcome.status != "scored" or outcome.value is None:
        run = outcome.status in ("failed", "timeout", "oom", "disk", "pruned")
        reason = outcome.reason or outcome.status
        return Lesson(verdict="failed" if run else "not run", text=f"{what}: {outcome.status}: {reason}"[:600],
                      next=("avoid these values, or fix what made it fail" if run else "")[:400], **base)
    if outcome.parent_value is None:
        return Lesson(verdict="inconclusive", text=f"{what}: scored {outcome.value:.4g}"[:600], **base)
    sign = 1.0 if goal == "maximize" else -1.0
    gain = sign * (outcome.value - outcome.parent_value)
    test = outcome.versus_parent
    if test is not None:
        verdict = "confirmed" if test.significant else ("refuted" if gain < 0 else "inconclusive")
        noise = f"; {test.wins} examples better, {test.losses} worse (p = {test.p_value:.2g})"
    else:
        verdict = "confirmed" if gain > 0 else "refuted"
        noise = "; not tested against the noise (no per-example scores)"
    text = (f"{what}: {outcome.value:.4g} against {outcome.parent_value:.4g} for {outcome.parent} "
            f"({'+' if gain >= 0 else ''}{gain:.3g}){noise}")
    return Lesson(verdict=verdict, gain=gain, text=text[:600], next=_next(changes, verdict == "confirmed")[:400],
                  **base)
