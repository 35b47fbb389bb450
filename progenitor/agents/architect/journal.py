"""The lineage as an architect reads it: recent candidates in full, older ones summarised. (A
change tried before is caught by its diff, after the coder wrote it: ``workflows.journal``.)"""

from __future__ import annotations

import re

from progenitor.agents.base import JournalEntry
from progenitor.candidate.keys import candidate_name

__all__ = ["FULL_ENTRIES", "for_prompt"]

FULL_ENTRIES = 16
"""The most recent candidates shown in full; older ones are summarised in a paragraph."""


def _short(text: str, n: int = 90) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= n else text[: n - 3] + "..."


def for_prompt(journal: list[JournalEntry], goal: str, full: int = FULL_ENTRIES) -> tuple[list[dict], str]:
    """(the recent entries, a summary of the older ones or "")."""
    older, recent = journal[:-full] if len(journal) > full else [], journal[-full:]
    if not older:
        return [e.model_dump() for e in recent], ""
    counts: dict[str, int] = {}
    for e in older:
        counts[e.status] = counts.get(e.status, 0) + 1
    scored = [e for e in older if e.value is not None]
    best = (max if goal == "maximize" else min)(scored, key=lambda e: e.value) if scored else None
    lines = [f"{len(older)} earlier candidates (generations {older[0].gen}-{older[-1].gen}): "
             + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
             + (f"; the best scored {best.value:.4g} ({candidate_name(best.gen, best.k)})" if best else "") + ". Their hypotheses:"]
    lines += [f"- {candidate_name(e.gen, e.k)} {e.status}{_figures(e)}: {_short(e.hypothesis)}" for e in older]
    return [e.model_dump() for e in recent], "\n".join(lines)


def _figures(e: JournalEntry) -> str:
    """An older candidate's metrics and training seconds, in a few words (`` error=0.2, 3 s trained``)."""
    metrics = ", ".join(f"{name}={value:.4g}" for name, value in list(e.metrics.items())[:4])
    if not metrics and e.value is not None:
        metrics = f"{e.value:.4g}"
    seconds = f"{e.train_seconds:.0f} s trained" if e.train_seconds is not None else ""
    both = ", ".join(x for x in (metrics, seconds) if x)
    return f" ({both})" if both else ""
