"""Promotion above the noise, the side that touches a run: repeats with other seeds, and the
per-example scores the paired test reads.

- ``objective.repeats: N`` (N > 1): the baseline (once, at the first generation) and, each generation, the best
  ``objective.repeat_top`` candidates whose first score beats the champion are trained again with
  seeds 1..N-1 (``{seed}``) and scored; their ``metrics`` become the mean of the N, their record
  keeps every seed's figures (``repeats``). The champion's figure is so always a mean of N too.
  This is the ``repeats`` node, between the scorer and select.
- the paired test (``evaluation.significance``) reads each model's per-example scores: what the
  scorer wrote into ``{scores}``, averaged over its repeats.
"""

from __future__ import annotations

import statistics
from typing import Optional

import numpy as np

from progenitor.candidate import Candidate, Champion
from progenitor.candidate.evidence import PairedTest
from progenitor.candidate.keys import CandidateKey
from progenitor.evaluation import significance
from progenitor.evaluation.honesty import holdout_size
from progenitor.evaluation.significance import PER_EXAMPLE_FILE, load_per_example
from progenitor.run.events import Repeated
from progenitor.run.summary import Honesty
from progenitor.workflows.nodes import save, score_dir
from progenitor.workflows.state import RunContext, State, Update
from progenitor.workflows.training import train

__all__ = ["mean_metrics", "per_example", "repeat", "repeats", "summarize", "versus"]


def per_example(ctx: RunContext, gen: int, k: int) -> Optional[np.ndarray]:
    """A model's per-example holdout scores, averaged over its trainings (its repeats' too, for
    those the scorer wrote them for); None when the scorer wrote none for its first training."""
    expected = holdout_size(ctx.spec, ctx.run.data)
    first, _ = load_per_example(ctx.run.scores(gen, k) / PER_EXAMPLE_FILE, expected)
    if first is None:
        return None
    arrays = [first]
    for seed in range(1, ctx.spec.objective.repeats):
        more, _ = load_per_example(ctx.run.repeat(gen, k, seed) / "scores" / PER_EXAMPLE_FILE, expected)
        if more is not None and more.shape == first.shape:
            arrays.append(more)
    return np.mean(arrays, axis=0)


def versus(ctx: RunContext, key: CandidateKey, other: Champion, compared: int = 1) -> Optional[PairedTest]:
    """The paired test of candidate ``key`` against ``other`` (None: no per-example scores for
    both, or ``objective.significance`` is null)."""
    objective = ctx.spec.objective
    if objective.significance is None:
        return None  # the per-example files are not read
    mine, theirs = per_example(ctx, key.gen, key.k), per_example(ctx, other.gen, other.k)
    return significance.versus(mine, theirs, objective.goal, objective.significance, compared)


def mean_metrics(first: dict[str, float], more: list[dict[str, float]]) -> dict[str, float]:
    """Each metric's mean over the trainings that measured it."""
    names = set(first).union(*more) if more else set(first)
    out = {}
    for name in names:
        values = [m[name] for m in (first, *more) if name in m]
        out[name] = statistics.fmean(values)
    return out


def repeat(ctx: RunContext, key: CandidateKey, sha: str, first: dict[str, float]) -> tuple[dict[str, float], list[dict]]:
    """Train and score ``key`` again with seeds 1..N-1; (the mean metrics, each seed's metrics).
    A seed that fails to train or score is left out of the mean, and said so."""
    more: list[dict[str, float]] = []
    for seed in range(1, ctx.spec.objective.repeats):
        record = train(ctx, [(key, sha)], seed=seed).get(key)
        if record is None or record.status != "ok":
            ctx.emit(Repeated(gen=key.gen, k=key.k, seed=seed, status=record.status if record else "not trained"))
            continue
        result = score_dir(ctx, key, seed=seed)
        ctx.emit(Repeated(gen=key.gen, k=key.k, seed=seed, status="scored" if result.ok else "failed",
                          value=result.metrics.get(ctx.spec.objective.metric), reason=result.reason))
        if result.ok:
            more.append(result.metrics)
    return mean_metrics(first, more), more


def _top(ctx: RunContext, state: State) -> list[Candidate]:
    """The candidates to repeat: the best ``repeat_top`` whose first score beats the champion's mean."""
    objective = ctx.spec.objective
    current = state.champion.metrics[objective.metric]
    fresh = [c for c in state.candidates
             if c.status == "scored" and not c.repeats and not c.guard_failed and objective.better(c.value, current)]
    sign = 1 if objective.goal == "maximize" else -1
    return sorted(fresh, key=lambda c: sign * c.value, reverse=True)[: objective.repeat_top]


def _baseline(ctx: RunContext, state: State) -> Update:
    """The human baseline trained with the other seeds, once (the first generation that needs it):
    the champion's figure is then a mean of as many trainings as a candidate's."""
    baseline = state.baseline
    if baseline.repeats:
        return Update()
    key = CandidateKey(run=ctx.run.run_id, gen=0, k=0)
    metrics, more = repeat(ctx, key, baseline.sha, baseline.metrics)
    baseline = baseline.model_copy(update={"metrics": metrics, "repeats": [baseline.metrics, *more]})
    ctx.run.update_meta(baseline=baseline.model_dump())
    update = Update(baseline=baseline)
    if state.champion.sha == baseline.sha:
        update.champion = baseline
    return update


def repeats(ctx: RunContext, state: State) -> Update:
    """The ``repeats`` node: the generation's best candidates trained again with other seeds
    (nothing to do with ``objective.repeats: 1``)."""
    if ctx.spec.objective.repeats <= 1:
        return Update()
    update = _baseline(ctx, state)
    state = state.model_copy(update={k: getattr(update, k) for k in ("baseline", "champion") if getattr(update, k)})
    chosen = {c.k for c in _top(ctx, state)}
    out = []
    for cand in state.candidates:
        if cand.k in chosen:
            metrics, more = repeat(ctx, cand.key, cand.sha, cand.metrics)
            cand = cand.with_(metrics=metrics, repeats=[cand.metrics, *more])
            save(ctx, cand)
        out.append(cand)
    update.candidates = out
    return update


def summarize(ctx: RunContext, state: State, honesty: Honesty) -> Honesty:
    """The closing summary's evidence: the champion against the baseline example by example, the
    seeds behind each figure, and the gains that were held back as noise."""
    metric = ctx.spec.objective.metric
    baseline, champion = state.baseline, state.champion
    if baseline is None or champion is None:
        return honesty
    notes = list(honesty.notes)
    paired = None
    if champion.sha != baseline.sha:
        paired = versus(ctx, CandidateKey(run=ctx.run.run_id, gen=champion.gen, k=champion.k), baseline)
        if paired is not None:
            notes.append(f"the champion against the human baseline, example by example: {paired.describe()} "
                         "(one test of a champion chosen among many: the test split is the honest check)")
    values = {name: [m[metric] for m in model.repeats if metric in m] for name, model in
              (("champion", champion), ("baseline", baseline))}
    if len(values["champion"]) > 1:
        spread = ", ".join(f"{name} {statistics.fmean(v):.4g} (sd {statistics.stdev(v):.2g} over {len(v)} seeds)"
                           for name, v in values.items() if len(v) > 1)
        notes.append(f"each figure is a mean over training seeds (objective.repeats): {spread}")
    held = [h for h in state.history if h.noise]
    if held:
        notes.append(f"{len(held)} generation(s) had a candidate that beat the champion on the holdout but was not "
                     f"promoted, its gain within the noise (g{held[-1].gen}: {held[-1].noise})")
    return honesty.model_copy(update={"paired": paired, "champion_repeats": values["champion"],
                                      "baseline_repeats": values["baseline"], "held_by_noise": len(held),
                                      "notes": notes})
