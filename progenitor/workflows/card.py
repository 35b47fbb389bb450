"""What a person at a gate needs beside the candidate's own numbers: the card.

``context`` goes into the gate's request (so its hash pins it, and every surface on every
machine shows the same): the objective and each metric's direction with its guard's limits,
the baseline's and champion's figures, the selection-luck bound (Hoeffding, over every
candidate compared so far) against each candidate's gain, the test split's figures where known
(a candidate is scored on it only once promoted), and the whole generation in one table with
why each one lost. ``extras`` adds per candidate: growth of parameters and training cost
against the champion (flagged), the gain, and where an edit came from. ``details`` is what the
store keeps beside the request for a page that cannot reach this machine: each candidate's
diff text and its training curve (the candidate's own word).
"""

from __future__ import annotations

from typing import Any, Optional

from progenitor.candidate import Candidate
from progenitor.candidate.keys import candidate_name
from progenitor.evaluation.after_scoring import directions
from progenitor.evaluation.honesty import DELTA, holdout_size, selection_luck
from progenitor.workflows.state import RunContext, State

__all__ = ["context", "details", "extras"]

DIFF_CAP = 200_000
"""Characters of a diff kept for a page (a candidate may commit a huge one)."""
GROWTH_FLAG = 2.0
"""A growth factor shown as a warning even under the task's own escalation limit."""


def _compared(state: State) -> int:
    """Candidates the scorer measured so far, this generation's included, and the baseline."""
    before = sum(g.counts.get("scored", 0) for g in state.history)
    return 1 + before + sum(1 for c in state.candidates if c.status == "scored")


def luck(ctx: RunContext, state: State) -> dict:
    """The selection-luck bound of the run so far, or why there is none."""
    obj = ctx.spec.objective
    n, m = holdout_size(ctx.spec, ctx.run.data), _compared(state)
    if obj.range is None:
        return {"bound": None, "compared": m, "holdout_n": n,
                "why": "objective.range is not set, so how much selection alone can flatter the best is not bounded"}
    if not n:
        return {"bound": None, "compared": m, "holdout_n": None,
                "why": "the holdout's size is not known (scorer.predictions.match names no file of examples)"}
    return {"bound": selection_luck(n, m, obj.range[1] - obj.range[0]), "compared": m, "holdout_n": n,
            "confidence": 1 - DELTA}


def test_figures(ctx: RunContext, state: State) -> Optional[dict]:
    spec = ctx.spec
    if spec.data.test is None:
        return None
    name = f"test_{spec.objective.metric}"
    return {"metric": name, "baseline": state.baseline.test_metrics.get(name) if state.baseline else None,
            "champion": state.champion.test_metrics.get(name) if state.champion else None}


def _gain(ctx: RunContext, value: Optional[float], reference: Optional[float]) -> Optional[float]:
    if value is None or reference is None:
        return None
    return value - reference if ctx.spec.objective.goal == "maximize" else reference - value


def generation(ctx: RunContext, state: State, asked: list[int]) -> list[dict]:
    """Every candidate of the generation, one row each: how it did, and why it stands where it does."""
    champion = state.champion.metrics.get(ctx.spec.objective.metric) if state.champion else None
    rows = []
    for c in sorted(state.candidates, key=lambda c: c.k):
        value = c.value if c.status == "scored" else None
        rows.append({
            "candidate": c.key.name, "status": c.status, "value": value, "gain": _gain(ctx, value, champion),
            "why": c.guard_failed or (c.decision.reason if c.decision else "") or c.reason, "asked": c.k in asked,
            "params": dict(c.params or c.proposal.params), "hypothesis": c.proposal.hypothesis[:300],
        })
    return _losers(ctx, rows)


def _losers(ctx: RunContext, rows: list[dict]) -> list[dict]:
    """A scored candidate not at the gate, with no reason of its own yet (selection comes after
    the gate): say why it is not the one asked about."""
    metric = ctx.spec.objective.metric
    asked = [r for r in rows if r["asked"] and r["value"] is not None]
    for row in rows:
        if row["why"] or row["asked"] or row["value"] is None:
            continue
        if row["gain"] is not None and row["gain"] <= 0:
            row["why"] = f"no better than the champion on {metric}"
        elif asked:
            best = max(asked, key=lambda r: r["gain"] if r["gain"] is not None else float("-inf"))
            row["why"] = f"not selected: {best['candidate']} has the better {metric} ({best['value']:.4g})"
    return rows


def context(ctx: RunContext, state: State, asked: list[Candidate]) -> dict:
    """The card's shared part, for the gate's request."""
    champion = state.champion
    return {
        "objective": {"metric": ctx.spec.objective.metric, "goal": ctx.spec.objective.goal,
                      "target": ctx.spec.objective.target, "range": ctx.spec.objective.range},
        "directions": directions(ctx.spec),
        "baseline": dict(state.baseline.metrics) if state.baseline else {},
        "champion": {"candidate": candidate_name(champion.gen, champion.k) if champion and champion.gen else "baseline",
                     "metrics": dict(champion.metrics) if champion else {}},
        "luck": luck(ctx, state), "test": test_figures(ctx, state),
        "generation": generation(ctx, state, [c.k for c in asked]),
    }


def _ratio(new: Any, old: Any) -> Optional[float]:
    if not isinstance(new, (int, float)) or not isinstance(old, (int, float)) or old <= 0:
        return None
    return new / old


def _cost(ctx: RunContext, gen: int, k: int) -> Optional[float]:
    from progenitor.candidate.keys import CandidateKey

    spent = ctx.ledger.candidate(CandidateKey(run=ctx.run.run_id, gen=gen, k=k).job) if ctx.ledger else None
    return spent.cpu_seconds + spent.gpu_seconds if spent else None


def extras(ctx: RunContext, state: State, cand: Candidate) -> dict:
    """The card's part about one candidate: growth, gain, where an edit came from."""
    o, metric = ctx.spec.oversight, ctx.spec.objective.metric
    champion, baseline = state.champion, state.baseline
    growth = {}
    params = _ratio(cand.metrics.get(o.params_metric), champion.metrics.get(o.params_metric))
    if params is not None:
        growth["params"] = {"ratio": params, "metric": o.params_metric, "limit": o.max_param_growth,
                            "flag": params > (o.max_param_growth or GROWTH_FLAG)}
    cost = _ratio(_cost(ctx, cand.gen, cand.k), _cost(ctx, champion.gen, champion.k))
    if cost is not None:
        growth["cost"] = {"ratio": cost, "limit": o.max_cost_growth, "flag": cost > (o.max_cost_growth or GROWTH_FLAG)}
    value = cand.metrics.get(metric)
    out: dict[str, Any] = {
        "growth": growth,
        "gain": {"over_champion": _gain(ctx, value, champion.metrics.get(metric)),
                 "over_baseline": _gain(ctx, value, baseline.metrics.get(metric) if baseline else None)},
    }
    if cand.proposal.edit_of is not None:
        out["edited_from"] = {"candidate": candidate_name(cand.gen, cand.proposal.edit_of), "by": cand.proposal.author}
    return out


def details(ctx: RunContext, request: dict) -> dict:
    """Each asked candidate's diff text and training curve, for the store (``Gate.details``)."""
    from progenitor.compute.pruning import read_curves

    diffs, curves = {}, {}
    progress = ctx.spec.train.progress
    for action in request.get("action_requests", []):
        args = action["args"]
        name = args["candidate"]
        if args.get("parent") and args.get("commit"):
            text = ctx.lineage.git.diff("--no-color", "-M", args["parent"], args["commit"])
            diffs[name] = {"text": text[:DIFF_CAP], "cut": len(text) > DIFF_CAP}
        gen, _, k = name.partition("/")
        if progress and args.get("metrics"):
            curve = read_curves(ctx.run.outputs(int(gen[1:]), int(k[1:])) / progress)
            if curve:
                curves[name] = curve
    return {"diffs": diffs, "curves": curves}
