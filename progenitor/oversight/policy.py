"""Oversight's policy: what to do with the candidate that select picked, and when a person must decide.

Every mode starts from the same policy: promote a candidate that beats the champion, keep the
champion otherwise, and escalate a candidate that beats it but carries a finding that needs a
human (a constitution change, a possible capability jump, parameters or training cost grown
past ``oversight.max_param_growth`` / ``max_cost_growth``). Then the mode says who decides:

- ``auto``: policy, except that an escalation waits at the human gate;
- ``approver``: a person, at the gate, for every promotion and escalation (and before training a
  generation whose estimated cost is above ``oversight.approve_training_above``);
- ``auditor``: policy, never waiting (an escalated candidate is not promoted); a person reviews
  the audit log and may revert a generation afterwards.

Pure: the nodes record every decision in the audit log and do the waiting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel

from progenitor.candidate import Candidate, Decision
from progenitor.candidate.findings import Finding, needs_human
from progenitor.candidate.keys import candidate_name
from progenitor.task.spec import TaskSpec

__all__ = ["PolicyDecision", "Selection", "TrainingEstimate", "approvals_needed", "candidate_decision", "escalations",
           "estimate_training", "gate_rules", "growth_findings", "held_for_person", "judge", "needs_person",
           "training_above"]


class Selection(BaseModel):
    """The best scored candidate of a generation that passed its guards, against the champion."""

    k: int
    sha: str
    value: float
    champion_value: float
    improves: bool
    """Better than the champion by more than ``objective.min_delta`` (and above the noise, when
    it was tested: see ``noise``)."""
    reason: str
    noise: Optional[str] = None
    """Set when it beats the champion on the holdout but its gain does not hold above the noise
    (the paired test over the holdout examples): why, in one sentence."""


class PolicyDecision(BaseModel):
    action: Literal["approve", "keep", "escalate", "none"]
    """approve: promote it; keep: the champion stays; escalate: a person must decide; none: nothing to decide."""
    k: Optional[int] = None
    actor: str
    reason: str
    comment: str = ""
    audit_seq: Optional[int] = None
    """The audit-log entry that records it (set by the node)."""
    noise: bool = False
    """keep: the candidate beat the champion on the holdout, but not above the noise (in approver
    mode a person still sees it, with why policy would not promote it)."""


def escalations(cand: Candidate) -> list[Finding]:
    return [f for f in cand.findings if f.escalate]


def approvals_needed(spec: TaskSpec, kind: str, findings: list[Finding]) -> int:
    """How many different people must approve at a gate of ``kind`` opened for candidates with
    ``findings``: the largest ``oversight.approvals`` count that applies (1 by default)."""
    counts = spec.oversight.approvals
    return max([counts.get(kind, 1), *(counts.get(f.rule, 1) for f in findings if f.escalate)])


def gate_rules(spec: TaskSpec, kind: str, findings: list[Finding]) -> dict:
    """What deciding at the gate takes, carried in its request (so every surface, on any machine,
    applies the same rules): approvals needed, whether a signature is, whose keys count."""
    o = spec.oversight
    rules: dict = {"approvals": approvals_needed(spec, kind, findings)}
    if o.require_signatures:
        rules["signatures"] = "required"
    if o.allowed_signers:
        rules["allowed_signers"] = o.allowed_signers
    return rules


def judge(mode: str, selection: Optional[Selection], candidates: list[Candidate]) -> PolicyDecision:
    actor = f"policy:{mode}"
    if selection is None:
        return PolicyDecision(action="none", actor=actor, reason="no candidate was scored and passed its guards")
    chosen = next(c for c in candidates if c.k == selection.k)
    if not selection.improves and selection.noise:
        return PolicyDecision(action="keep", k=chosen.k, actor=actor, noise=True,
                              reason=f"not promoted: {selection.reason}, but {selection.noise}")
    if not selection.improves:
        return PolicyDecision(action="keep", k=chosen.k, actor=actor, reason=f"does not beat the champion: {selection.reason}")
    escalated = escalations(chosen)
    if escalated:
        return PolicyDecision(action="escalate", k=chosen.k, actor=actor,
                              reason=f"escalated to a human, not promoted by policy: {escalated[0].message}")
    return PolicyDecision(action="approve", k=chosen.k, actor=actor, reason=f"improves the objective: {selection.reason}")


def needs_person(mode: str, decision: PolicyDecision) -> bool:
    """Does the promotion gate open for this decision?"""
    if mode == "approver":
        return decision.action in ("approve", "escalate") or decision.noise
    return mode == "auto" and decision.action == "escalate"


def _ratio(new: Optional[float], old: Optional[float]) -> Optional[float]:
    if new is None or old is None or old <= 0:
        return None
    return new / old


def growth_findings(spec: TaskSpec, metrics: dict[str, float], champion_metrics: dict[str, float],
                    cost: Optional[float], champion_cost: Optional[float]) -> list[Finding]:
    """Escalating findings for parameters or training cost grown past the task's factors.

    ``cost``: CPU- plus GPU-seconds of the candidate's training, ``champion_cost``: the champion's."""
    o, found = spec.oversight, []
    grew = _ratio(metrics.get(o.params_metric), champion_metrics.get(o.params_metric))
    if o.max_param_growth is not None and grew is not None and grew > o.max_param_growth:
        found.append(Finding(rule="param-growth", severity="medium", escalate=True,
                             message=(f"{o.params_metric} grows {grew:.3g}x over the champion's "
                                      f"(more than oversight.max_param_growth {o.max_param_growth:g})")))
    grew = _ratio(cost, champion_cost)
    if o.max_cost_growth is not None and grew is not None and grew > o.max_cost_growth:
        found.append(Finding(rule="cost-growth", severity="medium", escalate=True,
                             message=(f"training cost grows {grew:.3g}x over the champion's ({champion_cost:.3g} -> "
                                      f"{cost:.3g} CPU+GPU-seconds; more than oversight.max_cost_growth "
                                      f"{o.max_cost_growth:g})")))
    return found


def held_for_person(spec: TaskSpec, findings: list[Finding], blockers: list[Finding]) -> bool:
    """Should a candidate the review would reject wait for a person instead?

    Only when it needs a human (a constitution change) and nothing else blocks it: its blocking
    findings all concern the constitution itself, and the mode lets a person decide (auditor
    never waits, so there it is rejected, with the escalation on record)."""
    name = spec.safety.constitution
    if spec.oversight.mode == "auditor" or not name or not needs_human(findings):
        return False
    constitution = Path(name).as_posix()
    return all(f.escalate or (f.rule == "protected-path" and f.file == constitution) for f in blockers)


class TrainingEstimate(BaseModel):
    candidates: int
    seconds_each: float
    """The longest training of this run so far (the baseline's at first), or the timeout."""
    cpu_hours: float
    gpu_hours: float
    dollars: float
    """LLM dollars an average generation of this run has cost so far (0 with offline agents)."""


def estimate_training(spec: TaskSpec, n: int, past_seconds: list[float], last_dollars: float = 0.0
                      ) -> TrainingEstimate:
    each = max(past_seconds) if past_seconds else spec.train.timeout
    res = spec.train.resources
    return TrainingEstimate(candidates=n, seconds_each=round(each, 3), cpu_hours=n * res.cpus * each / 3600,
                            gpu_hours=n * res.gpus * each / 3600, dollars=last_dollars)


def training_above(spec: TaskSpec, estimate: TrainingEstimate) -> list[str]:
    """Why training this generation needs a person first (empty: it does not)."""
    limit = spec.oversight.approve_training_above
    if spec.oversight.mode != "approver" or limit is None or estimate.candidates == 0:
        return []
    reasons = []
    for field, unit in (("cpu_hours", "CPU-hours"), ("gpu_hours", "GPU-hours"), ("dollars", "dollars")):
        cap, value = getattr(limit, field), getattr(estimate, field)
        if cap is not None and value > cap:
            reasons.append(f"estimated {value:.3g} {unit} is above oversight.approve_training_above.{field} ({cap:g})")
    return reasons


def candidate_decision(cand: Candidate, decision: PolicyDecision, promoted: Optional[int],
                       chosen_value: Optional[float] = None) -> Decision:
    """The decision as it concerns one candidate, for its record (``chosen_value``: the objective
    of the candidate the decision was about, to tell a tie from a lower rank)."""
    if promoted is not None and cand.k == promoted:
        return Decision(verdict="promoted", by=decision.actor, reason=decision.reason, comment=decision.comment)
    if cand.decision is not None and cand.decision.by.startswith("human:") and decision.k != cand.k:
        return cand.decision  # a person's word on this candidate at an earlier gate stands
    if cand.status != "scored":
        return cand.decision or Decision(verdict=cand.status, by="platform", reason=cand.reason)
    if cand.guard_failed:
        return Decision(verdict="not promoted", by="platform", reason="guard: " + cand.guard_failed)
    if decision.k == cand.k:
        return Decision(verdict="not promoted", by=decision.actor, reason=decision.reason, comment=decision.comment)
    chosen = candidate_name(cand.gen, decision.k) if decision.k is not None else "another candidate"
    if chosen_value is not None and cand.value == chosen_value:
        return Decision(verdict="not promoted", by="policy",
                        reason=f"tied with {chosen} on {cand.objective}, which was proposed first and chosen")
    return Decision(verdict="not promoted", by="policy", reason=f"{chosen} of its generation ranked higher")
