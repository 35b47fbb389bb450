"""Oversight: who decides whether the selected candidate becomes the champion.

``auto`` decides by policy and escalates when a rule fires (a blocking-level safety
finding that needs a human, such as a constitution change, or a capability jump): an
escalated candidate is *not* promoted by policy. ``auditor`` decides like ``auto`` and
never blocks; every decision goes to the hash-chained audit log either way. ``approver``
(a person approves each promotion) is refused at run start until its surface exists.
"""

from __future__ import annotations

from typing import Any, Optional

from progenitor.workflows.state import RunContext, RunState

def escalations(cand: dict) -> list[dict]:
    return [f for f in cand.get("findings", []) if f.get("escalate")]


def record_escalations(ctx: RunContext, gen: int, candidates: list[dict]) -> None:
    """Put every escalating finding in the audit log, once (keys make it idempotent).

    Called right after the safety review, so that an escalation is on record even when the
    whole generation is rejected and never reaches the oversight node, and again there.
    """
    run_id = ctx.run.run_id
    for cand in candidates:
        for finding in escalations(cand):
            ctx.audit.append(
                key=f"{run_id}/g{gen}/c{cand['k']}/escalation/{finding['rule']}", action="escalate",
                actor=f"policy:{ctx.spec.oversight.mode}", run=run_id, gen=gen, commit=cand.get("sha"),
                payload=finding, comment=f"needs a human decision: {finding['message']}",
            )


def decide(ctx: RunContext, state: RunState) -> dict:
    gen, run_id = state["generation"], ctx.run.run_id
    selection = state.get("selection")
    actor = f"policy:{ctx.spec.oversight.mode}"
    record_escalations(ctx, gen, state["candidates"])
    if selection is None:
        decision = {"action": "none", "k": None, "actor": actor, "comment": "", "reason": "no candidate was scored and passed its guards"}
    else:
        chosen = next(c for c in state["candidates"] if c["k"] == selection["k"])
        escalated = escalations(chosen)
        if escalated:
            decision = {"action": "escalate", "k": chosen["k"], "actor": actor, "comment": "",
                        "reason": f"escalated to a human, not promoted by policy: {escalated[0]['message']}"}
        elif selection["improves"]:
            decision = {"action": "approve", "k": chosen["k"], "actor": actor, "comment": "",
                        "reason": f"improves the objective: {selection['reason']}"}
        else:
            decision = {"action": "keep", "k": chosen["k"], "actor": actor, "comment": "",
                        "reason": f"does not beat the champion: {selection['reason']}"}
    commit = None if decision["k"] is None else next(c.get("sha") for c in state["candidates"] if c["k"] == decision["k"])
    entry = ctx.audit.append(
        key=f"{run_id}/g{gen}/decision", action=decision["action"], actor=actor, run=run_id, gen=gen,
        commit=commit, payload={"selection": selection}, comment=decision["reason"],
    )
    decision["audit_seq"] = entry["seq"]
    return decision


def candidate_decision(cand: dict, decision: dict, promoted: Optional[Any]) -> dict:
    """The decision as it concerns one candidate, for its record."""
    actor = decision.get("actor", "policy")
    if promoted is not None and cand["k"] == promoted:
        return {"verdict": "promoted", "by": actor, "reason": decision.get("reason", "")}
    if cand["status"] != "scored":
        return {"verdict": cand["status"], "by": "platform", "reason": cand.get("reason", "")}
    if cand.get("guard_failed"):
        return {"verdict": "not promoted", "by": "platform", "reason": "guard: " + cand["guard_failed"]}
    if decision.get("k") == cand["k"]:
        return {"verdict": "not promoted", "by": actor, "reason": decision.get("reason", "")}
    return {"verdict": "not promoted", "by": "policy", "reason": "another candidate of its generation ranked higher"}

