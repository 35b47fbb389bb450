"""How far to trust a run's final numbers.

The holdout both chooses the champion and scores it, so a search that compares many
candidates on a few hundred holdout examples picks, in part, the one that got lucky on
them: the champion's holdout figure is optimistic, the more so the more candidates were
compared. Three things keep the summary honest:

- **the test split** (``data.test``): scored only for the baseline and for each champion when
  it is promoted, never for other candidates and never read by the architect or select. Its
  figure is the one to report; the gap between holdout and test is shown.
- **a bound on selection luck.** For a metric that is a mean over ``n`` examples of a score in
  ``[a, b]`` (``objective.range``), Hoeffding's inequality bounds one candidate's holdout error:
  ``P(|mean - true| >= eps) <= 2 exp(-2 n eps^2 / (b - a)^2)``. A union bound over the ``m``
  candidates compared makes it hold for all of them at once with probability ``1 - delta`` when
  ``eps = (b - a) sqrt(ln(2 m / delta) / (2 n))`` (Hoeffding 1963; the finite-class bound of
  Shalev-Shwartz & Ben-David, *Understanding Machine Learning*, 2014, Cor. 4.6; the same
  reasoning behind Dwork et al., "The reusable holdout", Science 2015). A champion whose gain
  over the baseline is within ``eps`` may owe all of it to the choice: the summary warns.
- **drift of the guarded metrics** since the human baseline (``safety.results.drift``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

from progenitor.candidate import Champion
from progenitor.run.summary import Honesty
from progenitor.task.spec import TaskSpec

__all__ = ["DELTA", "Honesty", "assess", "holdout_size", "selection_luck"]

DELTA = 0.05
"""The bound holds for every candidate compared at once with probability 1 - DELTA."""


def selection_luck(n: int, m: int, width: float, delta: float = DELTA) -> float:
    """Largest error of any of ``m`` holdout means over ``n`` examples, w.p. 1 - delta (Hoeffding + union)."""
    return width * math.sqrt(math.log(2 * max(m, 1) / delta) / (2 * n))


def holdout_size(spec: TaskSpec, data: Path) -> Optional[int]:
    """Examples in the holdout: rows of the file predictions are matched against, when declared;
    with ``evaluate: model``, rows of the inputs the harness feeds (not for a token stream, whose
    positions are not independent examples)."""
    if spec.predict is not None:
        name = None if spec.predict.sequence is not None else spec.predict.inputs
    else:
        expect = spec.scorer.predictions
        name = expect.match if expect is not None else None
    if not name or not (data / name).is_file():
        return None
    import numpy as np

    return int(np.load(data / name, allow_pickle=False, mmap_mode="r").shape[0])


def assess(spec: TaskSpec, baseline: Optional[Champion], champion: Optional[Champion], compared: int,
           holdout_n: Optional[int]) -> Honesty:
    obj = spec.objective
    metric = obj.metric
    sign = 1 if obj.goal == "maximize" else -1
    baseline = baseline or Champion(sha="", metrics={})
    champion = champion or Champion(sha="", metrics={})
    base_value, champ_value = baseline.metrics.get(metric), champion.metrics.get(metric)
    out = Honesty(holdout_n=holdout_n, compared=compared)
    if spec.data.test is not None:
        out.test_metric = f"test_{metric}"
        out.baseline_test = baseline.test_metrics.get(out.test_metric)
        out.champion_test = champion.test_metrics.get(out.test_metric)
        if champ_value is not None and out.champion_test is not None:
            out.holdout_test_gap = champ_value - out.champion_test
        if None not in (base_value, champ_value, out.baseline_test, out.champion_test) and champion.sha != baseline.sha:
            if sign * (champ_value - base_value) > 0 and sign * (out.champion_test - out.baseline_test) <= 0:
                out.notes.append(f"the champion beats the baseline on the holdout but not on the test split "
                                 f"({out.champion_test:.4g} vs {out.baseline_test:.4g}): its gain did not carry over")
    else:
        out.notes.append("the task has no test split: the champion's figure is the same holdout figure that "
                         "selected it, and is optimistic")
    if obj.range is not None and holdout_n:
        out.selection_luck = selection_luck(holdout_n, compared, obj.range[1] - obj.range[0])
        gain = None if None in (base_value, champ_value) else sign * (champ_value - base_value)
        if gain is not None and champion.sha != baseline.sha and gain <= out.selection_luck:
            out.notes.append(
                f"{compared} candidates were compared on {holdout_n} holdout examples: selection alone can make the "
                f"best look up to {out.selection_luck:.3g} better than it is (Hoeffding bound, {1 - DELTA:.0%}), "
                f"and the champion's holdout gain is {gain:.3g}")
    return out
