"""Selection, oversight and promotion: ``select`` ranks the scored candidates, ``oversight``
decides about the best one by policy (and records it in the audit log) or asks a person at the
promotion gate (``gates``), ``promote`` moves the champion, finalises every candidate's record
(its git note), tells the architect, and loops or ends."""

from __future__ import annotations

from typing import Optional

from progenitor.agents import safety
from progenitor.agents.base import Observation
from progenitor.candidate import Candidate, Champion
from progenitor.candidate.evidence import Evidence
from progenitor.candidate.keys import CandidateKey, candidate_name, generation_name
from progenitor.evaluation import after_scoring
from progenitor.lineage import champion_ref
from progenitor.oversight import policy
from progenitor.oversight.policy import PolicyDecision, Selection
from progenitor.run.events import GenerationEnd, OutputsRemoved, OversightDecision, Pick, Select
from progenitor.run.retention import apply_retention
from progenitor.run.rundir import read_json
from progenitor.run.summary import GenerationSummary
from progenitor.workflows.llm_usage import candidate_cost
from progenitor.workflows.nodes import record_escalations, save, test_metrics
from progenitor.workflows.reflection import with_lessons
from progenitor.workflows.state import RunContext, State, Update

__all__ = ["after_oversight", "after_promote", "oversight", "promote", "select", "stalled"]


# -- select -----------------------------------------------------------------------------------
def select(ctx: RunContext, state: State) -> Update:
    objective = ctx.spec.objective
    champion = state.champion
    ranked, out = [], []
    for cand in state.candidates:
        decided = cand.decision is not None and cand.decision.by.startswith("human:")
        if cand.status == "scored" and not cand.guard_failed and not decided:  # checked once (a generation may
            # loop after an edit: what a person edited into another candidate is not asked about again)
            broken = after_scoring.check_guards(ctx.spec, cand.metrics, champion.metrics, state.baseline.metrics)
            if broken:
                cand = cand.with_(findings=[*cand.findings, *broken], guard_failed=broken[0].message)
                save(ctx, cand)
            else:
                ranked.append(cand)
        out.append(cand)
    sign = 1 if objective.goal == "maximize" else -1
    ranked.sort(key=lambda c: sign * c.value, reverse=True)
    selection = None
    if ranked:
        best = ranked[0]
        current = champion.metrics[objective.metric]
        improves, noise = objective.better(best.value, current), None
        if improves:
            best, noise = _above_noise(ctx, state, best, len(ranked))
            out = [best if c.k == best.k else c for c in out]
        selection = Selection(k=best.k, sha=best.sha, value=best.value, champion_value=current,
                              improves=improves and noise is None, noise=noise,
                              reason=f"{objective.metric} {best.value:.4g} vs champion {current:.4g}")
    ctx.emit(Select(gen=state.generation, selection=Pick(**selection.model_dump()) if selection else None))
    return Update(candidates=out, selection=selection)


def _above_noise(ctx: RunContext, state: State, best: Candidate, compared: int) -> tuple[Candidate, Optional[str]]:
    """The best candidate with its evidence against the champion (the paired test, its repeats);
    and why its gain does not hold above the noise, or None when it does (or cannot be tested)."""
    from progenitor.workflows.evidence import versus

    champion, metric = state.champion, ctx.spec.objective.metric
    test = versus(ctx, best.key, champion, compared)
    if test is None and not best.repeats:
        return best, None
    noise = None if test is None or test.significant else test.describe()
    verdict = test.describe() if test is not None else "no per-example scores: not tested against the noise"
    evidence = Evidence(against=candidate_name(champion.gen, champion.k), paired=test,
                        repeats=[m[metric] for m in best.repeats if metric in m],
                        against_repeats=[m[metric] for m in champion.repeats if metric in m], verdict=verdict)
    best = best.with_(evidence=evidence)
    save(ctx, best)
    return best, noise


# -- oversight --------------------------------------------------------------------------------
def _growth(ctx: RunContext, state: State, cand: Candidate) -> Candidate:
    """The chosen candidate with the growth rules' findings (parameters, training cost) added once."""
    if any(f.rule in ("param-growth", "cost-growth") for f in cand.findings):
        return cand
    champion = state.champion

    def cost(job: str) -> Optional[float]:
        spent = ctx.ledger.candidate(job) if ctx.ledger is not None else None
        return spent.cpu_seconds + spent.gpu_seconds if spent else None

    found = policy.growth_findings(ctx.spec, cand.metrics, champion.metrics, cost(cand.key.job),
                                   cost(CandidateKey(run=ctx.run.run_id, gen=champion.gen, k=champion.k).job))
    if found:
        cand = cand.with_(findings=safety.sort_findings([*cand.findings, *found]))
        save(ctx, cand)
    return cand


def oversight(ctx: RunContext, state: State) -> Update:
    from progenitor.oversight import reverts
    from progenitor.workflows.gates import gate_id, promotion_request

    gen, run_id, mode = state.generation, ctx.run.run_id, ctx.spec.oversight.mode
    cands = state.candidates
    selection = state.selection
    if selection is not None:
        cands = [_growth(ctx, state, c) if c.k == selection.k else c for c in cands]
    record_escalations(ctx, cands)
    decision = policy.judge(mode, selection, cands)
    chosen = next((c for c in cands if c.k == decision.k), None)
    stop = reverts.blocked(ctx, chosen.parent) if chosen and decision.action in ("approve", "escalate") else None
    if stop:
        decision = decision.model_copy(update={"action": "keep", "reason": f"not promoted: {stop}"})
    gate = gate_id(state, gen, "promotion")
    asks = policy.needs_person(mode, decision)
    request = promotion_request(ctx, state, chosen, decision, gate) if asks else None
    rounds = sum(1 for g in state.gates if g.startswith(f"{generation_name(gen)}/promotion"))
    entry = ctx.audit.append(
        key=f"{run_id}/{generation_name(gen)}/decision" + (f"/{rounds + 1}" if rounds else ""),
        # "ask": a promotion policy would make, left to a person (approver); an escalation keeps its name.
        action="ask" if asks and decision.action == "approve" else decision.action, actor=decision.actor,
        run=run_id, gen=gen,
        commit=chosen.sha if chosen else None,
        payload=request if asks else {"selection": selection.model_dump() if selection else None},
        comment=f"{decision.reason}; a person decides at {gate}" if asks else decision.reason,
        **({"gate": gate} if asks else {}),
    )
    decision = decision.model_copy(update={"audit_seq": entry["seq"]})
    ctx.emit(OversightDecision(gen=gen, **decision.model_dump(), asks=gate if asks else None))
    update = Update(decision=decision, candidates=cands, request=request)
    if asks:
        update.gates = [*state.gates, gate]
    return update


def after_oversight(state: State) -> str:
    return "promotion_gate" if state.request else "promote"


# -- promote ----------------------------------------------------------------------------------
def _observation(cand: Candidate) -> Observation:
    return Observation(status=cand.status, value=cand.value if cand.status == "scored" else None, reason=cand.reason)


def promote(ctx: RunContext, state: State) -> Update:
    gen, metric = state.generation, ctx.spec.objective.metric
    decision = state.decision or PolicyDecision(action="none", actor="platform",
                                                reason="no candidate survived the safety review")
    champion = state.champion
    cands = state.candidates
    promoted = None
    if decision.action == "approve":
        chosen = next(c for c in cands if c.k == decision.k)
        tested = test_metrics(ctx, chosen.key)  # after the decision: the test split never chooses
        cands = [c.with_(test_metrics=tested) if c.k == chosen.k else c for c in cands]
        champion = Champion(sha=chosen.sha, metrics=chosen.metrics, gen=gen, k=chosen.k, params=chosen.params,
                            test_metrics=tested, repeats=chosen.repeats)
        ctx.lineage.set_ref(champion_ref(ctx.run.run_id), chosen.sha, f"progenitor: {chosen.key.name} promoted")
        promoted = chosen.k
    decided = []
    for cand in cands:
        if not cand.final:  # its work never reached an end (TRANSITIONS says which statuses do)
            cand = cand.fail(f"its {cand.status} work never finished")
        decided.append(cand.with_(decision=policy.candidate_decision(cand, decision, promoted, _chosen_value(cands, decision)),
                                  cost=candidate_cost(ctx, cand.key)))
    out = with_lessons(ctx, state, decided)  # in the note before it is published
    for cand in out:
        save(ctx, cand, publish=True)
        ctx.architect.observe(cand.proposal, _observation(cand))
    summary = _summary(ctx, gen, out, champion, promoted, state.history)
    if promoted is None and state.selection is not None and state.selection.noise:
        summary.noise = f"{state.selection.reason}, but {state.selection.noise}"
    ctx.emit(GenerationEnd(**summary.model_dump()))
    history = [*state.history, summary]
    _retain(ctx, _settled(ctx, state, gen), history)
    feedback = [*state.feedback, *([decision.comment] if decision.comment else [])]
    if ctx.spec.search.mode == "async":  # counted in generations launched; a reason found once holds
        reason = state.stop_reason or stop_reason(ctx, state.flow.next - 1, champion.metrics[metric], history)
    else:
        reason = stop_reason(ctx, gen, champion.metrics[metric], history)
    return Update(champion=champion, candidates=out, history=history, generation=gen + 1, stop_reason=reason,
                  feedback=feedback)


def _chosen_value(cands: list[Candidate], decision: PolicyDecision) -> Optional[float]:
    chosen = next((c for c in cands if c.k == decision.k), None)
    return chosen.value if chosen is not None else None


def _untrained(ctx: RunContext, gen: int, cands: list[Candidate]) -> str:
    """Why no candidate of generation ``gen`` reached training, in one sentence."""
    if not cands:
        failed = read_json(ctx.run.architect_failure(gen))
        return failed["reason"] if failed else "the architect proposed nothing"
    return "; ".join(f"{c.key.name} {c.status}: {c.reason or 'no reason given'}" for c in cands)


def _settled(ctx: RunContext, state: State, gen: int) -> int:
    """The last generation whose every earlier one is decided: ``gen``, or in the asynchronous
    mode (where generations end out of order) the one before the oldest still in the pool."""
    if ctx.spec.search.mode != "async":
        return gen
    pending = state.flow.pending
    return pending[0] - 1 if pending else state.flow.next - 1


def _retain(ctx: RunContext, gen: int, history: list[GenerationSummary]) -> None:
    """Remove the outputs ``train.keep_outputs`` does not keep, now that generation ``gen`` is decided."""
    keep = ctx.spec.train.keep_outputs
    champions = {(0, 0), *((h.gen, h.promoted) for h in history if h.promoted is not None)}
    freed = apply_retention(ctx.run, keep, champions, upto_gen=gen)
    if freed.outputs:
        ctx.emit(OutputsRemoved(gen=gen, keep=keep, candidates=freed.outputs, bytes=freed.bytes))


def _summary(ctx: RunContext, gen: int, cands: list[Candidate], champion: Champion, promoted: Optional[int],
             history: list[GenerationSummary]) -> GenerationSummary:
    counts: dict[str, int] = {}
    for cand in cands:
        counts[cand.status] = counts.get(cand.status, 0) + 1
    values = [c.value for c in cands if c.status == "scored"]
    best = (max(values) if ctx.spec.objective.goal == "maximize" else min(values)) if values else None
    spend = {}
    if ctx.ledger is not None:
        spend = ctx.ledger.totals(generation=gen).model_dump()
        ctx.run.update_meta(ledger=ctx.ledger.summary())
    trained = sum(1 for c in cands if c.train is not None)
    return GenerationSummary(gen=gen, promoted=promoted, promotions=[] if promoted is None else [promoted],
                             champion=champion.sha, champion_value=champion.metrics[ctx.spec.objective.metric],
                             best_value=best, counts=counts, spend=spend, trained=trained,
                             untrained="" if trained else _untrained(ctx, gen, cands), **slot_time(ctx, history))


def slot_time(ctx: RunContext, history: list[GenerationSummary]) -> dict:
    """A generation's time on the run's clock (since the one before ended, or the baseline was
    scored) and the slot-seconds no training used in it."""
    if ctx.ledger is None:
        return {}
    before = [h.ended for h in history if h.ended is not None]
    start = before[-1] if before else ctx.ledger.data.marks.get("prepared", 0.0)
    end = round(ctx.ledger.run_wall_seconds(), 3)
    return {"wall_seconds": round(end - start, 3), "ended": end, "idle_slot_seconds": ctx.ledger.idle_slot_seconds(start, end)}


def stop_reason(ctx: RunContext, gen: int, champion_value: float, history: list[GenerationSummary]) -> Optional[str]:
    """Why the run ends (or, in the asynchronous mode, launches nothing more) after generation
    ``gen`` (asynchronous: after ``gen`` generations were launched), else None."""
    if ctx.spec.objective.reached(champion_value):
        return f"target reached: {ctx.spec.objective.metric} {champion_value:.4g}"
    if ctx.ledger is not None:
        capped = ctx.ledger.check_caps(ctx.spec.budget)
        if capped:
            return capped
    stall = stalled(ctx.spec.stall_generations, history)
    if stall:
        return stall
    if gen >= ctx.spec.generations_total:
        if ctx.spec.search.mode == "async":
            return f"budget: {ctx.spec.generations_total} candidates proposed"
        return f"budget: {ctx.spec.budget.generations} generations done"
    # A stop request is not an end: the next node raises RunStopped and the run stays resumable.
    return None


def stalled(after: int, history: list[GenerationSummary]) -> Optional[str]:
    """The reason to end a run whose last ``after`` generations trained no candidate, else None."""
    last = history[-after:] if after else []
    if len(last) < after or not last or any(h.trained for h in last):
        return None
    why = "; ".join(f"{generation_name(h.gen)}: {h.untrained}" for h in last)
    return f"no candidate was trained in {after} consecutive generation{'s' if after > 1 else ''} ({why})"


def after_promote(state: State) -> str:
    return "end" if state.stop_reason else "architect"
