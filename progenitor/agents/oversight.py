"""Oversight's policy: what to do with the candidate that select picked.

``auto`` and ``auditor`` decide by policy: promote a candidate that beats the champion,
keep the champion otherwise, and escalate when a finding needs a human (a constitution
change, a possible capability jump): an escalated candidate is never promoted by policy.
Pure: the oversight node records every decision in the audit log.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel

from progenitor.agents.safety.findings import Finding
from progenitor.candidate import Candidate, Decision

__all__ = ["PolicyDecision", "Selection", "candidate_decision", "decide", "escalations"]


class Selection(BaseModel):
    """The best scored candidate of a generation that passed its guards, against the champion."""

    k: int
    sha: str
    value: float
    champion_value: float
    improves: bool
    """Better than the champion by more than ``objective.min_delta``."""
    reason: str


class PolicyDecision(BaseModel):
    action: Literal["approve", "keep", "escalate", "none"]
    """approve: promote it; keep: the champion stays; escalate: a person must decide; none: nothing to decide."""
    k: Optional[int] = None
    actor: str
    reason: str
    comment: str = ""
    audit_seq: Optional[int] = None
    """The audit-log entry that records it (set by the node)."""


def escalations(cand: Candidate) -> list[Finding]:
    return [f for f in cand.findings if f.escalate]


def decide(mode: str, selection: Optional[Selection], candidates: list[Candidate]) -> PolicyDecision:
    actor = f"policy:{mode}"
    if selection is None:
        return PolicyDecision(action="none", actor=actor, reason="no candidate was scored and passed its guards")
    chosen = next(c for c in candidates if c.k == selection.k)
    escalated = escalations(chosen)
    if escalated:
        return PolicyDecision(action="escalate", k=chosen.k, actor=actor,
                              reason=f"escalated to a human, not promoted by policy: {escalated[0].message}")
    if selection.improves:
        return PolicyDecision(action="approve", k=chosen.k, actor=actor, reason=f"improves the objective: {selection.reason}")
    return PolicyDecision(action="keep", k=chosen.k, actor=actor, reason=f"does not beat the champion: {selection.reason}")


def candidate_decision(cand: Candidate, decision: PolicyDecision, promoted: Optional[int]) -> Decision:
    """The decision as it concerns one candidate, for its record."""
    if promoted is not None and cand.k == promoted:
        return Decision(verdict="promoted", by=decision.actor, reason=decision.reason, comment=decision.comment)
    if cand.status != "scored":
        return Decision(verdict=cand.status, by="platform", reason=cand.reason)
    if cand.guard_failed:
        return Decision(verdict="not promoted", by="platform", reason="guard: " + cand.guard_failed)
    if decision.k == cand.k:
        return Decision(verdict="not promoted", by=decision.actor, reason=decision.reason, comment=decision.comment)
    return Decision(verdict="not promoted", by="policy", reason="another candidate of its generation ranked higher")
