"""What the safety reviewer reports: one ``Finding`` per broken rule, with a severity.

Kept below every check (the constitution, the code and file checks, bandit), so that none of
them imports the reviewer that calls them.
"""

from __future__ import annotations

from typing import Optional, get_args

from pydantic import BaseModel, ConfigDict

from progenitor.task.spec import Severity

__all__ = ["SEVERITIES", "Finding", "Severity", "blocking", "dedupe", "most_severe_first", "needs_human",
           "sort_findings"]

SEVERITIES: tuple[str, ...] = get_args(Severity)


class Finding(BaseModel):
    """One broken rule, as it goes into the candidate's git note and the run's records."""

    model_config = ConfigDict(extra="forbid")

    rule: str
    """Short id of the rule, e.g. ``protected-path``, ``forbidden-import``, ``bandit-B602``."""
    severity: Severity
    """info < low < medium < high < critical; ``Safety.block_at`` decides what rejects."""
    message: str
    """One sentence a person can act on."""
    file: Optional[str] = None
    """Path in the candidate's tree, relative to its root (None: about the whole candidate)."""
    line: Optional[int] = None
    """1-based line in ``file`` (None: the whole file)."""
    escalate: bool = False
    """Policy may not decide this alone: a human must (constitution change, capability jump)."""

    def at_least(self, threshold: str) -> bool:
        return SEVERITIES.index(self.severity) >= SEVERITIES.index(threshold)


def most_severe_first(findings: list[Finding]) -> list[Finding]:
    """Stable sort: most severe first, escalations first among equals (their message is the
    one a person must act on), then by file and line so reports read top to bottom."""
    return sorted(
        findings,
        key=lambda f: (-SEVERITIES.index(f.severity), not f.escalate, f.file or "", f.line or 0),
    )


def dedupe(findings: list[Finding]) -> list[Finding]:
    """Drop exact repeats (the same rule firing twice on the same spot with the same text)."""
    seen: set[tuple] = set()
    kept = []
    for f in findings:
        key = (f.rule, f.file, f.line, f.message)
        if key not in seen:
            seen.add(key)
            kept.append(f)
    return kept


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Findings of every reviewer as one report: repeats dropped, most severe first."""
    return most_severe_first(dedupe(findings))


def blocking(findings: list[Finding], block_at: str) -> list[Finding]:
    """The findings that reject the candidate."""
    return [f for f in findings if f.at_least(block_at)]


def needs_human(findings: list[Finding]) -> bool:
    """Must a person decide (a constitution change, a possible capability jump)?"""
    return any(f.escalate for f in findings)
