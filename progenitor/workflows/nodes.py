"""The nodes of the loop. Each takes the state, does its side effects idempotently (keyed
by run / generation / candidate, results on disk) and returns the state's new fields."""

from __future__ import annotations

from typing import Any

from progenitor import advice
from progenitor.agents import oversight, safety
from progenitor.agents.architect import Outcome, Proposal, ProposeContext
from progenitor.agents.coder import apply_proposal, commit_message, read_params
from progenitor.agents.trainer import TrainItem, train
from progenitor.errors import ModelBehaviorError, UserError
from progenitor.lineage import base_ref, candidate_ref, champion_ref
from progenitor.runs import read_json, write_json
from progenitor.scoring import prepare_data, score
from progenitor.workflows.state import RunContext, RunState

TERMINAL = ("rejected", "failed", "timeout", "oom", "killed", "pruned", "scored")


# -- helpers ------------------------------------------------------------------------------------
def save_candidate(ctx: RunContext, cand: dict) -> None:
    """Persist a candidate's record: in the run directory and as its git note."""
    record = {"run": ctx.run.run_id, "objective": ctx.spec.objective.metric, **cand}
    write_json(ctx.run.candidate(cand["gen"], cand["k"]) / "record.json", record)
    if cand.get("sha"):
        ctx.lineage.write_note(cand["sha"], record)


def constitution(ctx: RunContext):
    """The base's constitution, loaded and checked once per run session.

    A task the constitution itself rejects (a required guard it does not declare) would
    reject every candidate: that is one clear error at the start instead."""
    if ctx.constitution is None:
        rules, problems = safety.check_task(ctx.spec, ctx.run.trusted)
        blocking = safety.blocking(problems, ctx.spec.safety.block_at)
        if blocking:
            raise UserError(f"the task breaks its own constitution: {blocking[0].message}")
        for finding in problems:
            ctx.emit("safety.task", rule=finding.rule, severity=finding.severity, message=finding.message)
        ctx.constitution = rules
    return ctx.constitution


def score_dir(ctx: RunContext, gen: int, k: int) -> dict:
    """Score one trained candidate with the trusted scorer (looked up if done before)."""
    cand_dir = ctx.run.candidate(gen, k)
    done = read_json(cand_dir / "score.json")
    if done is not None:
        return done
    result = score(ctx.spec, ctx.run.trusted, ctx.run.data, cand_dir / "out").model_dump()
    write_json(cand_dir / "score.json", result)
    return result


# -- prepare -----------------------------------------------------------------------------------
def prepare(ctx: RunContext, state: RunState) -> dict:
    base = state["base"]
    trusted = ctx.run.trusted
    if not (trusted / ".exported").exists():
        ctx.lineage.export(base, trusted)
        (trusted / ".exported").write_text(base)
    constitution(ctx)  # a broken constitution or task is the user's to fix before anything runs
    ctx.emit("prepare.data")
    names = prepare_data(ctx.spec, trusted, ctx.run.data, ctx.run.visible)
    ctx.emit("prepare.visible", files=names)
    ctx.lineage.set_ref(base_ref(ctx.run.run_id), base, "progenitor: run base")
    if not ctx.lineage.resolve(champion_ref(ctx.run.run_id)):
        ctx.lineage.set_ref(champion_ref(ctx.run.run_id), base, "progenitor: baseline champion")
    ctx.emit("baseline.start", commit=base)
    record = train(ctx, [TrainItem(gen=0, k=0, sha=base)])["g0/c0"]
    if record["status"] != "ok":
        raise advice.baseline_failed(base, ctx.spec.train.command, record["reason"], record.get("log_tail", ""))
    scored = score_dir(ctx, 0, 0)
    if not scored["ok"]:
        raise advice.baseline_unscored(base, ctx.spec.scorer.command, scored["reason"])
    metrics = scored["metrics"]
    params = read_params(trusted, ctx.spec)
    seed = getattr(ctx.architect, "seed_baseline", None)
    if seed:
        seed(params, metrics[ctx.spec.objective.metric])
    baseline = {"sha": base, "metrics": metrics, "gen": 0, "k": 0, "params": params}
    ctx.run.update_meta(baseline=baseline)
    ctx.emit("baseline.end", metrics=metrics)
    return {"baseline": baseline, "champion": baseline, "generation": 1, "history": [], "feedback": [],
            "candidates": [], "stop_reason": None}


# -- architect -------------------------------------------------------------------------------
def journal(ctx: RunContext, state: RunState) -> list[dict]:
    entries = []
    for summary in state.get("history", []):
        entries.extend(summary.get("candidates", []))
    return entries


def architect(ctx: RunContext, state: RunState) -> dict:
    gen = state["generation"]
    path = ctx.run.proposals(gen)
    saved = read_json(path)
    if saved is None:
        params = state["champion"].get("params") or {}
        pctx = ProposeContext(
            gen=gen, count=ctx.spec.budget.candidates, spec=ctx.spec, champion_params=params,
            journal=journal(ctx, state), feedback=state.get("feedback", []),
        )
        try:
            proposals = ctx.architect.propose(pctx)
        except ModelBehaviorError as exc:
            ctx.emit("architect.failed", gen=gen, reason=str(exc))
            proposals = []
        saved = [p.model_dump() for p in proposals]
        write_json(path, saved)
    candidates = []
    for item in saved:
        proposal = Proposal.model_validate(item)
        candidates.append({"gen": gen, "k": proposal.k, "status": "proposed", "proposal": item,
                           "parent": state["champion"]["sha"], "ref": candidate_ref(ctx.run.run_id, gen, proposal.k),
                           "findings": []})
        ctx.emit("architect.proposal", gen=gen, k=proposal.k, hypothesis=proposal.hypothesis)
    return {"candidates": candidates, "selection": None, "decision": None}


# -- coder -----------------------------------------------------------------------------------
def coder(ctx: RunContext, state: RunState) -> dict:
    out = []
    for cand in state["candidates"]:
        cand = dict(cand)
        if cand["status"] == "proposed":
            proposal = Proposal.model_validate(cand["proposal"])
            try:
                sha = ctx.lineage.commit_candidate(
                    cand["ref"], cand["parent"], lambda tree: apply_proposal(proposal, tree, ctx.spec),
                    commit_message(proposal, cand["gen"]),
                )
                cand.update(sha=sha, status="committed", diff=ctx.lineage.diff_stats(cand["parent"], sha))
                cand["params"] = {**(state["champion"].get("params") or {}), **proposal.params}
                ctx.emit("coder.commit", gen=cand["gen"], k=cand["k"], commit=sha, ref=cand["ref"])
            except (ModelBehaviorError, UserError) as exc:
                cand.update(status="failed", reason=f"the coder could not apply the proposal: {exc}")
                ctx.emit("coder.failed", gen=cand["gen"], k=cand["k"], reason=cand["reason"])
            save_candidate(ctx, cand)
        out.append(cand)
    return {"candidates": out}


# -- safety review ---------------------------------------------------------------------------
def safety_review(ctx: RunContext, state: RunState) -> dict:
    out = []
    for cand in state["candidates"]:
        cand = dict(cand)
        if cand["status"] == "committed":
            changed = [safety.ChangedFile(**c) for c in ctx.lineage.changed_files(cand["parent"], cand["sha"])]
            with ctx.lineage.worktree(cand["sha"]) as tree:
                findings = safety.review_candidate(safety.ReviewInput(
                    spec=ctx.spec, base_tree=ctx.run.trusted, candidate_tree=tree, changed=changed,
                    constitution=constitution(ctx),
                ))
            cand["findings"] = [f.model_dump() for f in findings]
            blockers = safety.blocking(findings, ctx.spec.safety.block_at)
            if blockers:
                cand.update(status="rejected", reason="rejected by the safety review: " + blockers[0].message)
            else:
                cand["status"] = "reviewed"
            ctx.emit("safety.review", gen=cand["gen"], k=cand["k"], status=cand["status"],
                     findings=len(findings), reason=cand.get("reason", ""))
            save_candidate(ctx, cand)
        out.append(cand)
    oversight.record_escalations(ctx, state["generation"], out)
    return {"candidates": out}


def after_review(state: RunState) -> str:
    return "trainer" if any(c["status"] == "reviewed" for c in state["candidates"]) else "promote"


# -- trainer ---------------------------------------------------------------------------------
def trainer(ctx: RunContext, state: RunState) -> dict:
    todo = [TrainItem(gen=c["gen"], k=c["k"], sha=c["sha"]) for c in state["candidates"] if c["status"] == "reviewed"]
    records = train(ctx, todo, champion=state["champion"])
    out = []
    for cand in state["candidates"]:
        cand = dict(cand)
        record = records.get(f"g{cand['gen']}/c{cand['k']}")
        if record is not None:
            cand["train"] = {k: v for k, v in record.items() if k != "log_tail"}
            cand["log_tail"] = record["log_tail"]
            cand["status"] = "trained" if record["status"] == "ok" else record["status"]
            if record["status"] != "ok":
                cand["reason"] = record["reason"]
            save_candidate(ctx, cand)
        out.append(cand)
    return {"candidates": out}


# -- scorer ------------------------------------------------------------------------------------
def scorer(ctx: RunContext, state: RunState) -> dict:
    metric = ctx.spec.objective.metric
    history = [h["champion_value"] for h in state.get("history", []) if h.get("champion_value") is not None]
    history = [state["baseline"]["metrics"][metric], *history]
    out = []
    for cand in state["candidates"]:
        cand = dict(cand)
        if cand["status"] == "trained":
            result = score_dir(ctx, cand["gen"], cand["k"])
            if result["ok"]:
                cand.update(status="scored", metrics=result["metrics"])
                after = safety.check_after_training(
                    ctx.spec, cand.get("train", {}).get("self_reported", {}), result["metrics"], history,
                )
                cand["findings"] = [*cand.get("findings", []), *[f.model_dump() for f in after]]
            else:
                cand.update(status="failed", reason=result["reason"], scorer_log=result.get("log", ""))
            ctx.emit("score", gen=cand["gen"], k=cand["k"], status=cand["status"],
                     value=(cand.get("metrics") or {}).get(metric), reason=cand.get("reason", ""))
            save_candidate(ctx, cand)
        out.append(cand)
    return {"candidates": out}


# -- select ------------------------------------------------------------------------------------
def select(ctx: RunContext, state: RunState) -> dict:
    objective = ctx.spec.objective
    champion = state["champion"]
    ranked = []
    out = []
    for cand in state["candidates"]:
        cand = dict(cand)
        if cand["status"] == "scored":
            broken = safety.check_guards(ctx.spec, cand["metrics"], champion["metrics"])
            if broken:
                cand["findings"] = [*cand.get("findings", []), *[f.model_dump() for f in broken]]
                cand["guard_failed"] = broken[0].message
            else:
                ranked.append(cand)
        out.append(cand)
    sign = 1 if objective.goal == "maximize" else -1
    ranked.sort(key=lambda c: sign * c["metrics"][objective.metric], reverse=True)
    selection = None
    if ranked:
        best = ranked[0]
        value, current = best["metrics"][objective.metric], champion["metrics"][objective.metric]
        improves = objective.better(value, current)
        selection = {"k": best["k"], "sha": best["sha"], "value": value, "champion_value": current,
                     "improves": improves,
                     "reason": f"{objective.metric} {value:.4g} vs champion {current:.4g}"}
    ctx.emit("select", gen=state["generation"], selection=selection)
    return {"candidates": out, "selection": selection}


# -- oversight -------------------------------------------------------------------------------
def oversee(ctx: RunContext, state: RunState) -> dict:
    decision = oversight.decide(ctx, state)
    ctx.emit("oversight.decision", gen=state["generation"], **decision)
    return {"decision": decision}


# -- promote ---------------------------------------------------------------------------------
def _outcome(cand: dict, metric: str) -> Outcome:
    if cand["status"] == "scored":
        return Outcome(status="scored", value=cand["metrics"][metric])
    return Outcome(status="pruned" if cand["status"] == "pruned" else "failed")


def promote(ctx: RunContext, state: RunState) -> dict:
    gen, metric = state["generation"], ctx.spec.objective.metric
    decision = state.get("decision") or {}
    champion = state["champion"]
    promoted = None
    if decision.get("action") == "approve":
        chosen = next(c for c in state["candidates"] if c["k"] == decision["k"])
        champion = {"sha": chosen["sha"], "metrics": chosen["metrics"], "gen": gen, "k": chosen["k"],
                    "params": chosen.get("params", {})}
        ctx.lineage.set_ref(champion_ref(ctx.run.run_id), chosen["sha"], f"progenitor: g{gen}/c{chosen['k']} promoted")
        promoted = chosen["k"]
    out = []
    for cand in state["candidates"]:
        cand = dict(cand)
        if cand["status"] in ("reviewed", "committed", "trained", "proposed"):
            cand["status"] = "failed"
        cand["decision"] = oversight.candidate_decision(cand, decision, promoted)
        save_candidate(ctx, cand)
        ctx.architect.observe(Proposal.model_validate(cand["proposal"]), _outcome(cand, metric))
        out.append(cand)
    summary = summarize(gen, out, champion, promoted, metric, ctx.spec.objective.goal)
    if ctx.ledger is not None:
        summary["spend"] = ctx.ledger.totals(generation=gen).model_dump()
        ctx.run.update_meta(ledger=ctx.ledger.summary())
    history = [*state.get("history", []), summary]
    ctx.emit("generation.end", **{k: v for k, v in summary.items() if k != "candidates"})
    stop = stop_reason(ctx, gen, champion["metrics"][metric])
    feedback = [*state.get("feedback", []), *([decision["comment"]] if decision.get("comment") else [])]
    return {"champion": champion, "candidates": out, "history": history, "generation": gen + 1,
            "stop_reason": stop, "feedback": feedback}


def summarize(gen: int, cands: list[dict], champion: dict, promoted: Any, metric: str, goal: str) -> dict:
    counts: dict[str, int] = {}
    for cand in cands:
        counts[cand["status"]] = counts.get(cand["status"], 0) + 1
    values = [c["metrics"][metric] for c in cands if c["status"] == "scored"]
    return {
        "gen": gen, "promoted": promoted, "champion": champion["sha"], "champion_value": champion["metrics"][metric],
        "best_value": (max(values) if goal == "maximize" else min(values)) if values else None, "counts": counts,
        "candidates": [{"gen": c["gen"], "k": c["k"], "status": c["status"], "sha": c.get("sha"),
                        "hypothesis": c["proposal"].get("hypothesis"), "value": (c.get("metrics") or {}).get(metric),
                        "reason": c.get("reason", "")} for c in cands],
    }


def stop_reason(ctx: RunContext, gen: int, champion_value: float) -> Any:
    if ctx.spec.objective.reached(champion_value):
        return f"target reached: {ctx.spec.objective.metric} {champion_value:.4g}"
    if gen >= ctx.spec.budget.generations:
        return f"budget: {ctx.spec.budget.generations} generations done"
    if ctx.ledger is not None:
        capped = ctx.ledger.check_caps(ctx.spec.budget)
        if capped:
            return capped
    # A stop request is not an end: the next node raises RunStopped and the run stays resumable.
    return None


def after_promote(state: RunState) -> str:
    return "end" if state.get("stop_reason") else "architect"
