"""The checks on a candidate once it was trained and scored: the gap between what it printed
about itself and what the scorer measured, an implausible jump in the objective, and the
guard metrics that must hold for it to be promoted.

A **capability jump** (``check_jump``) is a gain over the champion larger than the lineage
makes plausible; it escalates, so policy never promotes it alone. Five rules, any one fires:

1. the gain exceeds ``oversight.max_jump`` (an absolute bound, when set);
2. the gain exceeds ``JUMP_FACTOR`` times the largest gain between consecutive champions so
   far (once there are ``MIN_PAST_GAINS`` of them);
3. the candidate reaches a perfect score (``oversight.perfect``: 0 error, 1.0 accuracy)
   while the champion had not, in any generation: an exact perfect score on a holdout is the
   signature of a candidate that found the labels, and a person should look before it wins;
4. while rule 2 has too few past gains to compare with (the first generations),
   the candidate got more than ``oversight.max_gain_ratio`` (100) times closer to the perfect
   value than the champion: an error from 3.12 to 0.02, an accuracy from 0.5 to 0.996.
   Judged against the baseline, this leaves honest first-generation tuning alone (3.12 -> 0.15
   is 21 times closer) and catches a gain "from nothing" that rule 2 cannot see.
5. while rule 2 has too few past gains, the gain is larger than ``oversight.max_relative_gain``
   (0.4) of the baseline's own value: a relative change, so it works on any scale, where rule 4
   cannot (a loss or a bits-per-character figure is nowhere near its perfect value 0: a language
   model from 3.53 to 1.61 bits in one step is 54 % better, and only this rule sees it).
"""

from __future__ import annotations

import math
from typing import Optional

from progenitor.candidate.findings import Finding
from progenitor.task.spec import Guard, TaskSpec

__all__ = ["JUMP_FACTOR", "check_after_training", "check_guards", "check_jump", "directions", "drift", "drift_limit",
           "perfect_value"]

JUMP_FACTOR = 3.0
"""An improvement more than this many times the lineage's largest past one is a possible capability jump."""
MIN_PAST_GAINS = 2
"""Past gains needed before the lineage's largest one is a scale to judge a new gain by."""


def _gain(goal: str, new: float, old: float) -> float:
    """How much better ``new`` is than ``old`` (negative: worse)."""
    return new - old if goal == "maximize" else old - new


def perfect_value(spec: TaskSpec, baseline: float) -> Optional[float]:
    """The objective's perfect value (``oversight.perfect``, inferred from the baseline for ``auto``)."""
    perfect = spec.oversight.perfect
    if perfect != "auto":
        return perfect
    if not math.isfinite(baseline):
        return None
    if spec.objective.goal == "minimize":
        return 0.0 if baseline >= 0 else None
    return 1.0 if 0.0 <= baseline <= 1.0 else None


def _distance(goal: str, value: float, perfect: float) -> float:
    """How far ``value`` is from perfect (0 at it, and beyond it)."""
    return max(perfect - value if goal == "maximize" else value - perfect, 0.0)


def _from_perfect(spec: TaskSpec, value: float, champion: float, perfect: Optional[float], first: bool) -> list[str]:
    """Rules 3 and 4 of the module docstring: why ``value`` is implausibly close to perfect."""
    if perfect is None:
        return []
    goal = spec.objective.goal
    near, far = _distance(goal, value, perfect), _distance(goal, champion, perfect)
    tolerance = 1e-12 * max(1.0, abs(perfect))
    if far <= tolerance:
        return []
    if near <= tolerance:
        return [f"a perfect score ({perfect:g}) from a champion that had none"]
    ratio = spec.oversight.max_gain_ratio
    if first and ratio is not None and far > ratio * near:
        return [f"{far / near:.0f} times closer to a perfect score ({perfect:g}) than the champion, with no past "
                f"gain to compare with (at most {ratio:g} allowed)"]
    return []


def _relative(spec: TaskSpec, gain: float, baseline: float) -> list[str]:
    """Rule 5 of the module docstring: a gain large against the baseline's own value."""
    bound = spec.oversight.max_relative_gain
    if bound is None or not math.isfinite(baseline) or baseline == 0:
        return []
    change = gain / abs(baseline)
    if change > bound:
        return [f"{change:.0%} of the baseline's {baseline:.4g}, with too few past gains to compare with "
                f"(at most {bound:.0%} allowed: oversight.max_relative_gain)"]
    return []


def check_jump(spec: TaskSpec, value: float, history: list[float], factor: float = JUMP_FACTOR) -> list[Finding]:
    """A gain over the champion (``history[-1]``) larger than the lineage makes plausible
    (the rules are in the module docstring).

    ``history`` is the champion's objective after each generation so far, oldest first: the
    baseline, then each generation's champion. Rule 2 waits for ``MIN_PAST_GAINS`` past gains:
    a single one is one sample, no scale (a first promotion a hair above the baseline would make
    every real improvement after it a "jump", and a run in auto mode would stop promoting);
    until then rule 4 judges the gain against the distance to a perfect score."""
    goal, metric = spec.objective.goal, spec.objective.metric
    if not history or not math.isfinite(value) or not math.isfinite(history[-1]):
        return []
    gain = _gain(goal, value, history[-1])
    if not gain > 0:
        return []
    past = [_gain(goal, b, a) for a, b in zip(history, history[1:])]
    past = [g for g in past if math.isfinite(g) and g > 0]
    reasons = []
    if spec.oversight.max_jump is not None and gain > spec.oversight.max_jump:
        reasons.append(f"more than oversight.max_jump ({spec.oversight.max_jump:.4g})")
    if len(past) >= MIN_PAST_GAINS and gain > max(factor * max(past), spec.objective.min_delta):
        reasons.append(f"more than {factor:g} times the lineage's largest past gain ({max(past):.4g})")
    first = len(past) < MIN_PAST_GAINS
    reasons += _from_perfect(spec, value, history[-1], perfect_value(spec, history[0]), first=first)
    if first:
        reasons += _relative(spec, gain, history[0])
    if not reasons:
        return []
    return [Finding(
        rule="capability-jump", severity="high", escalate=True,
        message=(f"{metric} improves by {gain:.4g} over the champion ({history[-1]:.4g} -> {value:.4g}), "
                 f"{' and '.join(reasons)}: a possible capability jump for a human to review"),
    )]


def check_after_training(
    spec: TaskSpec,
    self_reported: dict[str, float],
    measured: dict[str, float],
    history: list[float],
) -> list[Finding]:
    """Findings once a candidate is scored: self-report gaps and implausible jumps.

    ``history``: the champion's objective after each generation so far, oldest first
    (the last one is the champion this candidate is compared with)."""
    findings = []
    metric = spec.objective.metric
    if metric in self_reported and metric in measured:
        gap = abs(self_reported[metric] - measured[metric])
        if not gap <= spec.scorer.self_report_gap:  # a NaN gap is a gap too
            findings.append(Finding(
                rule="self-report-gap", severity="medium",
                message=(f"the candidate printed {metric}={self_reported[metric]:.4g} but the scorer "
                         f"measured {measured[metric]:.4g} (gap {gap:.3g})"),
            ))
    if metric in measured:
        findings += check_jump(spec, measured[metric], history)
    return findings


def _regression(guard: Guard, value: float, reference: Optional[float], limit: Optional[float], whose: str
                ) -> Optional[str]:
    if limit is None or reference is None or not math.isfinite(reference):
        return None
    loss = -_gain(guard.goal, value, reference)
    if loss > limit:
        return f"{value:.4g} regresses by {loss:.4g} from {whose} {reference:.4g} (at most {limit:.4g} allowed)"
    return None


def _guard(guard: Guard, value: Optional[float], champion: Optional[float], baseline: Optional[float]
           ) -> Optional[str]:
    """Why ``value`` breaks ``guard`` (None: it holds)."""
    if value is None:
        return "the scorer did not report it"
    if not math.isfinite(value):
        return f"the scorer measured {value}"
    if guard.min is not None and value < guard.min:
        return f"{value:.4g} is below its minimum {guard.min:.4g}"
    if guard.max is not None and value > guard.max:
        return f"{value:.4g} is above its maximum {guard.max:.4g}"
    return (_regression(guard, value, champion, guard.max_regression, "the champion's")
            # Small steps each within max_regression may add up: the baseline bounds the sum.
            or _regression(guard, value, baseline, drift_limit(guard), "the human baseline's"))


def drift_limit(guard: Guard) -> Optional[float]:
    """How far from the baseline a guarded metric may drift in all (``max_drift``, else ``max_regression``)."""
    return guard.max_drift if guard.max_drift is not None else guard.max_regression


def check_guards(spec: TaskSpec, measured: dict[str, float], champion_metrics: dict[str, float],
                 baseline_metrics: Optional[dict[str, float]] = None) -> list[Finding]:
    """One finding per broken guard; a candidate with any is not promoted, whatever its objective.

    Each guard holds against the champion the candidate would replace (``max_regression``) and
    against the human baseline (``max_drift``), so that regressions cannot compound."""
    findings = []
    for guard in spec.guards:
        why = _guard(guard, measured.get(guard.metric), champion_metrics.get(guard.metric),
                     (baseline_metrics or {}).get(guard.metric))
        if why:
            findings.append(Finding(rule="guard", severity="high",
                                    message=f"guard on {guard.metric!r} broken: {why}"))
    return findings


def directions(spec: TaskSpec) -> dict[str, dict]:
    """Which way each metric the task judges is better, and the limits its guard holds it to."""
    out: dict[str, dict] = {spec.objective.metric: {"goal": spec.objective.goal, "objective": True}}
    for guard in spec.guards:
        limits = {k: v for k, v in guard.model_dump().items() if k in ("min", "max", "max_regression", "max_drift")
                  and v is not None}
        # A guard's goal matters only for the regressions it bounds; a plain min/max says no direction.
        goal = guard.goal if drift_limit(guard) is not None else None
        out.setdefault(guard.metric, {"goal": goal})["guard"] = limits
    return out


def drift(spec: TaskSpec, baseline: dict[str, float], champion: dict[str, float]) -> dict[str, dict]:
    """How far each guarded metric with a direction (``max_regression`` / ``max_drift``) has moved
    from the baseline to the champion, in the guard's ``goal`` direction (worse is negative)."""
    moved = {}
    for guard in spec.guards:
        if drift_limit(guard) is None:
            continue  # a plain min/max bound: where it moved says nothing about regressing
        before, after = baseline.get(guard.metric), champion.get(guard.metric)
        if before is None or after is None:
            continue
        moved[guard.metric] = {"baseline": before, "champion": after, "change": _gain(guard.goal, after, before),
                               "allowed": drift_limit(guard), "goal": guard.goal}
    return moved
