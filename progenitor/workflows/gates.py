"""The human gate and the nodes around it.

A gate is a node of its own whose only work is ``interrupt(state["request"])``: no event, no
record, nothing before it, so a graph that re-enters it (every resume does) repeats nothing.
The node before it decides whether a person must be asked and writes the request (LangChain's
HITL shape, ``progenitor.oversight.hitl``) and the policy's audit entry; the node after it applies the
answer: the audit entry of the decision (keyed by gate, so a decision recorded already by the
surface that made it is not written twice), the candidates it changes, the feedback for the
architect. Checkpoints make each of those happen once.

Two gates: ``training_gate`` before training (candidates held for a person by the review, and,
in approver mode, a generation whose estimated cost is above the threshold) and
``promotion_gate`` before a promotion (approver mode, or an escalation in auto mode).
An edit (new values for a candidate) makes a new candidate of the same generation, built,
reviewed, trained and scored like any other; the original keeps its commit and record.
"""

from __future__ import annotations

from progenitor.candidate import Candidate, Decision
from progenitor.candidate.keys import generation_name
from progenitor.oversight import hitl, policy
from progenitor.oversight.policy import PolicyDecision
from progenitor.run.events import ArchitectProposal, GateApplied, OversightAsk, OversightDecision
from progenitor.workflows import card
from progenitor.workflows.llm_usage import candidate_cost
from progenitor.workflows.nodes import save
from progenitor.workflows.state import RunContext, RunState, State, Update

__all__ = ["after_promotion_decision", "after_training_check", "after_training_decision", "gate_id", "human_gate",
           "promotion_decision", "training_check", "training_decision"]


def human_gate(state: RunState) -> dict:
    """The gate itself: ask, and hand the answer to the next node. Nothing else (not even typing
    the state: it reads the request, as JSON, and writes the answer)."""
    from langgraph.types import interrupt

    return {"answer": interrupt(state["request"])}


def gate_id(state: State, gen: int, kind: str) -> str:
    """``g1/promotion``, then ``g1/promotion-2`` if the generation asks again (after an edit)."""
    prefix = f"{generation_name(gen)}/{kind}"
    n = sum(1 for g in state.gates if g == prefix or g.startswith(prefix + "-"))
    return prefix if n == 0 else f"{prefix}-{n + 1}"


def _actor(answer: dict) -> str:
    """Who decided: the person, or every approver of a gate that needed several (``a and b``)."""
    approvers = [str(a) for a in answer.get("approvers") or [] if str(a).startswith("human:")]
    if len(approvers) > 1:
        return " and ".join(approvers)
    by = str(answer.get("decided_by") or "")
    return by if by.startswith("human:") else f"human:{by or 'langgraph-client'}"


def _record(ctx: RunContext, state: State, answers: list[hitl.Answer], cands: dict[str, Candidate]) -> str:
    """The decision's audit entry (once per gate) and the store's note that it was applied."""
    request, answer = state.request, state.answer
    gate, actor = request["gate"], _actor(answer)
    kinds = sorted({a.type for a in answers})
    first = cands.get(answers[0].candidate) if answers else None
    ctx.audit.append(
        key=f"{ctx.run.run_id}/{gate['id']}/decision",
        action="edit" if "edit" in kinds else {"respond": "request-changes"}.get(kinds[0], kinds[0]),
        actor=actor, run=ctx.run.run_id, gen=gate["gen"], commit=first.sha if first else None, payload=request,
        comment=answer.get("comment") or next((a.message for a in answers if a.message), ""),
        gate=gate["id"], surface=answer.get("surface") or "langgraph",
        candidates=[a.candidate for a in answers], decisions=[a.type for a in answers],
    )
    ctx.store.mark_applied(ctx.run.run_id, gate["id"])
    ctx.emit(GateApplied(gate=gate["id"], gen=gate["gen"], gate_kind=gate["kind"], by=actor, decisions=kinds))
    return actor


def _edited(ctx: RunContext, cands: list[Candidate], orig: Candidate, params: dict, actor: str) -> Candidate:
    """The edited proposal as a new candidate of the same generation, built on the same parent."""
    from progenitor.oversight.hitl import coerce_params

    params = coerce_params(ctx.spec, params)
    k = max(c.k for c in cands) + 1
    before = {**orig.proposal.params, **{n: v for n, v in orig.params.items() if n in params}}
    changes = ", ".join(f"{n} {before.get(n, '?')}->{v}" for n, v in params.items())
    proposal = orig.proposal.model_copy(update={
        "k": k, "params": {**orig.proposal.params, **params}, "author": actor, "edit_of": orig.k,
        "hypothesis": f"{orig.proposal.hypothesis}; edited by {actor}: {changes}"})
    cand = Candidate.new(proposal, ctx.run.run_id, orig.parent, ctx.spec.objective.metric).with_(
        parent_name=orig.parent_name, step=orig.step)
    save(ctx, cand)
    ctx.emit(ArchitectProposal(gen=cand.gen, k=cand.k, hypothesis=proposal.hypothesis))
    return cand


# -- before training --------------------------------------------------------------------------
def _estimate(ctx: RunContext, n: int, gen: int) -> policy.TrainingEstimate:
    past, dollars = [], 0.0
    if ctx.ledger is not None:
        past = [a.wall_seconds for c in ctx.ledger.data.candidates.values() for a in c.attempts]
        if gen > 1:  # the last generation's LLM spend (approve_training_above.dollars)
            dollars = ctx.ledger.llm(generation=gen - 1).dollars
    return policy.estimate_training(ctx.spec, n, past, dollars)


def training_check(ctx: RunContext, state: State) -> Update:
    gen, mode = state.generation, ctx.spec.oversight.mode
    approved = set(state.approved)
    out = []
    for cand in state.candidates:
        if cand.status == "escalated" and cand.k in approved:
            cand = cand.advance("reviewed", reason="")  # a person edited it into being: that was the approval
            save(ctx, cand)
        out.append(cand)
    held = [c for c in out if c.status == "escalated"]
    waiting = [c for c in out if c.status == "reviewed" and c.k not in approved]
    estimate = _estimate(ctx, len(held) + len(waiting), gen)
    costly = policy.training_above(ctx.spec, estimate) if waiting else []
    asked = held + (waiting if costly else [])
    if not asked:
        return Update(candidates=out, request=None)
    gate = gate_id(state, gen, "training")
    champion = state.champion
    actions = []
    for cand in asked:
        why = [f.message for f in policy.escalations(cand)] if cand.status == "escalated" else costly
        text = (f"Train {cand.key.name} ({cand.proposal.hypothesis})? " + "; ".join(why))
        actions.append((hitl.action_args(cand, champion.metrics, estimate.model_dump(), why), text))
    description = (f"Generation {gen} waits before training: "
                   + ("; ".join(sorted({w for _, t in actions for w in [t.split('? ', 1)[-1]]}))))
    findings = [f for c in asked for f in c.findings]
    request = hitl.make_request(run=ctx.run.run_id, gate=gate, kind="training", gen=gen, action="train",
                                actions=actions, allowed=list(hitl.DECISION_TYPES),
                                schema=hitl.params_schema(ctx.spec), description=description,
                                rules={**policy.gate_rules(ctx.spec, "training", findings),
                                       **({"escalated": True} if held else {})},
                                context=card.context(ctx, state.model_copy(update={"candidates": out}), asked))
    ctx.audit.append(key=f"{ctx.run.run_id}/{gate}/ask", action="ask", actor=f"policy:{mode}", run=ctx.run.run_id,
                     gen=gen, commit=asked[0].sha, payload=request, comment=description, gate=gate)
    ctx.emit(OversightAsk(gate=gate, gen=gen, gate_kind="training", description=description))
    return Update(candidates=out, request=request, gates=[*state.gates, gate])


def _next_work(statuses: set[str]) -> str:
    """Train what was reviewed; else score what was trained (a crash fix that was itself
    rejected leaves the generation's other candidates waiting for their score); else promote."""
    return "trainer" if "reviewed" in statuses else "scorer" if "trained" in statuses else "promote"


def after_training_check(state: State) -> str:
    if state.request:
        return "training_gate"
    return _next_work({c.status for c in state.candidates})


def training_decision(ctx: RunContext, state: State) -> Update:
    answers = hitl.parse_response(state.request, state.answer)
    cands = state.candidates
    by_name = {c.key.name: c for c in cands}
    actor = _record(ctx, state, answers, by_name)
    approved, feedback = set(state.approved), list(state.feedback)
    for a in answers:
        cand = by_name[a.candidate]
        if a.type == "approve":
            approved.add(cand.k)
            if cand.status == "escalated":
                cand = cand.advance("reviewed", reason="")
                save(ctx, cand)
                by_name[cand.key.name] = cand
            continue
        if a.type == "edit":
            new = _edited(ctx, list(by_name.values()), cand, a.params, actor)
            by_name[new.key.name] = new
            approved.add(new.k)
            why = f"not trained: edited by {actor} into {new.key.name}"
        else:
            what = "rejected" if a.type == "reject" else "changes requested"
            why = f"not trained: {what} by {actor}" + (f": {a.message}" if a.message else "")
            if a.message and a.message not in feedback[-1:]:
                feedback.append(a.message)
        cand = cand.advance("rejected", reason=why).with_(
            decision=Decision(verdict="rejected", by=actor, reason=why, comment=a.message))
        save(ctx, cand)
        by_name[cand.key.name] = cand
    out = sorted(by_name.values(), key=lambda c: c.k)
    update = Update(candidates=out, approved=sorted(approved), request=None, answer=None, feedback=feedback)
    if not any(c.status in ("proposed", "reviewed") for c in out):
        update.decision = PolicyDecision(action="none", actor=actor,
                                         reason=f"nothing trained: {actor} decided so before training")
    return update


def after_training_decision(state: State) -> str:
    statuses = {c.status for c in state.candidates}
    if "proposed" in statuses:
        return "coder"
    return _next_work(statuses)


def _payload_cost(ctx: RunContext, cand: Candidate) -> dict:
    cost = candidate_cost(ctx, cand.key)
    return cost.model_dump() if cost is not None else {}


# -- before a promotion -----------------------------------------------------------------------
def promotion_request(ctx: RunContext, state: State, chosen: Candidate, decision: PolicyDecision, gate: str) -> dict:
    gen, mode = state.generation, ctx.spec.oversight.mode
    champion = state.champion
    why = ([f.message for f in policy.escalations(chosen)] if decision.action == "escalate"
           else [f"oversight.mode is {mode}: a person decides every promotion; policy would keep the champion: "
                 f"{chosen.evidence.verdict if chosen.evidence else decision.reason}"] if decision.noise
           else [f"oversight.mode is {mode}: a person approves every promotion"])
    metric = ctx.spec.objective.metric
    edited = (f" (edited by {chosen.proposal.author} from {generation_name(gen)}/c{chosen.proposal.edit_of}: "
              f"{chosen.proposal.hypothesis.rsplit(': ', 1)[-1]})" if chosen.proposal.edit_of is not None else "")
    text = (f"Promote {chosen.key.name}{edited} to champion of run {ctx.run.run_id}? {metric} {chosen.value:.4g} "
            f"against the champion's {champion.metrics.get(metric, float('nan')):.4g}; " + "; ".join(why))
    args = {**hitl.action_args(chosen, champion.metrics, _payload_cost(ctx, chosen), why),
            **card.extras(ctx, state, chosen)}
    findings = policy.escalations(chosen) if decision.action == "escalate" else []
    return hitl.make_request(run=ctx.run.run_id, gate=gate, kind="promotion", gen=gen, action="promote",
                             actions=[(args, text)], allowed=list(hitl.DECISION_TYPES),
                             schema=hitl.params_schema(ctx.spec), description=text,
                             rules={**policy.gate_rules(ctx.spec, "promotion", findings),
                                    **({"escalated": True} if decision.action == "escalate" else {})},
                             context=card.context(ctx, state, [chosen]))


def promotion_decision(ctx: RunContext, state: State) -> Update:
    from progenitor.oversight import reverts

    answers = hitl.parse_response(state.request, state.answer)
    cands = state.candidates
    by_name = {c.key.name: c for c in cands}
    actor = _record(ctx, state, answers, by_name)
    a = answers[0]
    chosen = by_name[a.candidate]
    comment = state.answer.get("comment") or a.message
    update = Update(request=None, answer=None)
    if a.type == "edit":
        new = _edited(ctx, cands, chosen, a.params, actor)
        chosen = chosen.with_(decision=Decision(verdict="not promoted", by=actor,
                                                reason=f"edited by {actor} into {new.key.name}", comment=comment))
        save(ctx, chosen)
        by_name[chosen.key.name] = chosen
        out = sorted([*by_name.values(), new], key=lambda c: c.k)
        update.candidates, update.decision, update.selection = out, None, None
        update.approved = sorted({*state.approved, new.k})
        return update
    if a.type == "approve":
        stop = reverts.blocked(ctx, chosen.parent)
        decision = (PolicyDecision(action="keep", k=chosen.k, actor=actor, comment=comment,
                                   reason=f"approved by {actor} but not promoted: {stop}") if stop else
                    PolicyDecision(action="approve", k=chosen.k, actor=actor, comment=comment,
                                   reason=f"approved by {actor}"))
    else:
        what = "rejected" if a.type == "reject" else "changes requested"
        decision = PolicyDecision(action="keep", k=chosen.k, actor=actor, reason=f"{what} by {actor}", comment=comment)
    ctx.emit(OversightDecision(gen=state.generation, **decision.model_dump()))
    update.decision = decision
    return update


def after_promotion_decision(state: State) -> str:
    return "coder" if any(c.status == "proposed" for c in state.candidates) else "promote"
