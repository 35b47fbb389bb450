"""progenitor's offline search, as the loop runs it, without the loop's sandboxes and git.

The same pieces the graph's nodes call, in the same order: parents drawn by
``agents.architect.parents`` (``search.parents``), proposals from the real ``SearchArchitect``
(its Optuna study in a temporary directory), each candidate's values written over its parent's,
the checks after scoring (the capability-jump check) and the guards (``evaluation.after_scoring``),
the best candidate against the champion (``objective.better``), then, with per-example scores, the
paired test (``evaluation.significance``, Bonferroni over the candidates ranked), and every result
told back to the architect. A candidate the jump check escalates is not promoted (auto mode would
wait for a person). ``tests/bench/test_search_loop.py`` checks that it makes the same proposals and
promotions as a real run of the loop.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Optional

import numpy as np
from pydantic import BaseModel

from bench.search_tasks import Eval, Task

__all__ = ["Pick", "Step", "simulate"]


class Pick(BaseModel):
    """The champion after a number of trainings."""

    holdout: float
    test: float
    promoted: bool
    """Not the baseline."""
    escalated: int = 0
    """Candidates the jump check escalated so far (auto mode would have waited for a person)."""


class Step(BaseModel):
    """One generation as it went (what the fidelity test compares with a real run)."""

    gen: int
    params: list[dict[str, Any]]
    parents: list[str]
    promoted: Optional[int] = None


def _spec(task: Task, candidates: int, generations: int, search: dict, significance: Optional[float]):
    spec = task.spec
    return spec.model_copy(update={
        "budget": spec.budget.model_copy(update={"candidates": candidates, "generations": generations}),
        "search": spec.search.model_copy(update=search),
        "objective": spec.objective.model_copy(update={"significance": significance}),
    })


def simulate(task: Task, seed: int, generations: int = 9, candidates: int = 4, search: Optional[dict] = None,
             significance: Any = "spec", record: tuple[int, ...] = (12, 36),
             steps: Optional[list[Step]] = None, baseline_overlaps: bool = False) -> dict[int, Pick]:
    """The champion after each number of trainings in ``record``; ``steps`` (when given) gets each generation.

    ``baseline_overlaps``: the asynchronous mode, in which the baseline trains beside the first
    candidate, so the architect proposes it before it is told the baseline's figure."""
    from progenitor.agents.architect import parents as rule
    from progenitor.agents.architect.search import SearchArchitect
    from progenitor.agents.base import AgentContext, Baseline, Observation, Parent, ProposeContext
    from progenitor.candidate import Candidate

    level = task.spec.objective.significance if significance == "spec" else significance
    spec = _spec(task, candidates, generations, search or {}, level)
    metric = spec.objective.metric
    base = task.evaluate(task.baseline)
    baseline = Parent(name="g0/c0", sha="g0c0", value=base.metrics[metric], params=dict(task.baseline),
                      metrics=base.metrics)
    with tempfile.TemporaryDirectory() as tmp:
        architect = SearchArchitect(AgentContext(spec=spec, run_id=f"bench-{seed}", workdir=Path(tmp), seed=seed))
        told = Baseline(params=baseline.params, metrics=base.metrics, value=baseline.value)
        if not baseline_overlaps:
            architect.seed(told)
        state = _State(baseline=baseline, base=base)
        picks: dict[int, Pick] = {}
        for gen in range(1, generations + 1):
            parents = _parents(spec, state, seed, gen, candidates, rule)
            proposals = architect.propose(ProposeContext(
                gen=gen, count=candidates, spec=spec, champion_params=state.champion.params,
                champion_metrics=state.champion.metrics, parents=parents))
            if baseline_overlaps and gen == 1:
                architect.seed(told)  # settled before the first candidate is decided
            cands = []
            for p in proposals:
                node = parents[p.k]
                params = {**node.params, **p.params}
                result = task.evaluate(params)
                cand = Candidate(run="bench", gen=gen, k=p.k, objective=metric,
                                 status="scored" if metric in result.metrics else "failed", proposal=p,
                                 parent=node.sha, sha=f"g{gen}c{p.k}", params=params, metrics=result.metrics,
                                 parent_name=node.name)
                cands.append((cand, result))
            promoted = _decide(spec, state, [(c, r) for c, r in cands if c.status == "scored"])
            for cand, _ in cands:
                architect.observe(cand.proposal, Observation(status=cand.status, value=cand.value))
            state.records += [c for c, _ in cands]
            if steps is not None:
                steps.append(Step(gen=gen, params=[c.params for c, _ in cands], parents=[n.name for n in parents],
                                  promoted=promoted))
            if gen * candidates in record:
                picks[gen * candidates] = Pick(holdout=state.champion.value, test=state.champion_eval.test,
                                               promoted=state.champion.sha != baseline.sha, escalated=state.escalated)
    return picks


class _State:
    def __init__(self, baseline, base: Eval):
        self.baseline, self.champion, self.champion_eval = baseline, baseline, base
        self.base = base
        self.records: list = []
        self.history = [baseline.value]
        self.escalated = 0


def _parents(spec, state: _State, seed: int, gen: int, count: int, rule) -> list:
    if spec.search.parents == "champion":
        return [state.champion] * count
    nodes = rule.nodes_of(state.baseline, state.records)
    chosen = []
    for k in range(count):
        node = rule.choose(nodes, spec.objective.goal, seed, gen, k)
        chosen.append(node)
        nodes = [n.model_copy(update={"children": n.children + 1}) if n.sha == node.sha else n for n in nodes]
    return chosen


def _decide(spec, state: _State, cands: list) -> Optional[int]:
    """select, oversight (auto, escalations not promoted) and promote, as the loop does them."""
    from progenitor.agents.base import Parent
    from progenitor.evaluation import after_scoring
    from progenitor.evaluation.significance import versus

    objective = spec.objective
    ranked = []
    for cand, result in cands:
        findings = after_scoring.check_after_training(spec, {}, result.metrics, state.history)
        broken = after_scoring.check_guards(spec, result.metrics, state.champion.metrics, state.baseline.metrics)
        if not broken:
            ranked.append((cand, result, any(f.escalate for f in findings)))
    sign = 1 if objective.goal == "maximize" else -1
    ranked.sort(key=lambda r: sign * r[0].value, reverse=True)
    promoted = None
    if ranked:
        best, result, escalate = ranked[0]
        improves = objective.better(best.value, state.champion.value)
        if improves:  # the loop's rule: no per-example scores (or a null level), no paired test
            test = versus(np.array(result.per_example), np.array(state.champion_eval.per_example),
                          objective.goal, objective.significance, len(ranked))
            improves = test is None or test.significant
        if improves and escalate:
            state.escalated += 1
        elif improves:
            state.champion = Parent(name=best.key.name, sha=best.sha, value=best.value, params=best.params,
                                    metrics=best.metrics)
            state.champion_eval = result
            promoted = best.k
    state.history.append(state.champion.value)
    return promoted
