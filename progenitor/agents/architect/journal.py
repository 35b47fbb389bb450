"""The lineage as an architect reads it: recent candidates in full, older ones summarised,
and the test that drops a proposal identical to one tried before."""

from __future__ import annotations

import json
import re

from progenitor.agents.base import JournalEntry
from progenitor.candidate import Proposal
from progenitor.candidate.keys import candidate_name

__all__ = ["FULL_ENTRIES", "drop_repeats", "fingerprint", "for_prompt"]

FULL_ENTRIES = 16
"""The most recent candidates shown in full; older ones are summarised in a paragraph."""


def _words(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def fingerprint(hypothesis: str, plan: str, params: dict) -> str:
    """What makes two proposals the same: their words (case and spacing aside) and values. Not
    their edits: the journal keeps a candidate's plan, not its edits, so both sides compare alike."""
    return json.dumps([_words(hypothesis), _words(plan), params], sort_keys=True, default=str)


def drop_repeats(proposals: list[Proposal], journal: list[JournalEntry]) -> tuple[list[Proposal], list[tuple[Proposal, str]]]:
    """The proposals not identical to an earlier candidate nor to one before them in the list;
    the dropped ones with why. Only proposals with a plan (a reasoning architect's code
    changes) are compared: the search keeps its own memory, and a scripted architect repeats
    itself on purpose."""
    seen = {fingerprint(e.hypothesis, e.plan, e.params): candidate_name(e.gen, e.k) for e in journal if e.fix_of is None and e.plan}
    kept, dropped = [], []
    for p in proposals:
        if not p.plan:
            kept.append(p)
            continue
        mark = fingerprint(p.hypothesis, p.plan, p.params)
        if mark in seen:
            dropped.append((p, f"identical to {seen[mark]}, tried before"))
            continue
        seen[mark] = candidate_name(p.gen, p.k)
        kept.append(p)
    return kept, dropped


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
    lines += [f"- {candidate_name(e.gen, e.k)} {e.status}{'' if e.value is None else f' {e.value:.4g}'}: {_short(e.hypothesis)}"
              for e in older]
    return [e.model_dump() for e in recent], "\n".join(lines)
