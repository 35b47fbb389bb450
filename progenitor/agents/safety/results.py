"""The checks on a candidate once it was trained and scored: the gap between what it printed
about itself and what the scorer measured, an implausible jump in the objective, and the
guard metrics that must hold for it to be promoted."""

from __future__ import annotations

import math
from typing import Optional

from progenitor.agents.safety.findings import Finding
from progenitor.spec import Guard, TaskSpec

__all__ = ["JUMP_FACTOR", "check_after_training", "check_guards", "check_jump"]

JUMP_FACTOR = 3.0
"""An improvement more than this many times the lineage's largest past one is a possible capability jump."""
MIN_PAST_GAINS = 2
"""Past gains needed before the lineage's largest one is a scale to judge a new gain by."""


def _gain(goal: str, new: float, old: float) -> float:
    """How much better ``new`` is than ``old`` (negative: worse)."""
    return new - old if goal == "maximize" else old - new


def check_jump(spec: TaskSpec, value: float, history: list[float], factor: float = JUMP_FACTOR) -> list[Finding]:
    """A gain over the champion (``history[-1]``) larger than the lineage makes plausible.

    ``history`` is the champion's objective after each generation so far, oldest first. The
    gain is implausible when it exceeds ``oversight.max_jump``, or ``factor`` times the
    largest gain between consecutive champions, once there are at least ``MIN_PAST_GAINS``
    of them: a single past gain is one sample, no scale (a first promotion a hair above the
    baseline would make every real improvement after it a "jump", and a run in auto mode
    would never promote again)."""
    goal, metric = spec.objective.goal, spec.objective.metric
    if not history or not math.isfinite(value) or not math.isfinite(history[-1]):
        return []
    gain = _gain(goal, value, history[-1])
    past = [_gain(goal, b, a) for a, b in zip(history, history[1:])]
    past = [g for g in past if math.isfinite(g) and g > 0]
    reasons = []
    if spec.oversight.max_jump is not None and gain > spec.oversight.max_jump:
        reasons.append(f"more than oversight.max_jump ({spec.oversight.max_jump:.4g})")
    if len(past) >= MIN_PAST_GAINS and gain > max(factor * max(past), spec.objective.min_delta):
        reasons.append(f"more than {factor:g} times the lineage's largest past gain ({max(past):.4g})")
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


def _guard(guard: Guard, value: Optional[float], champion: Optional[float]) -> Optional[str]:
    """Why ``value`` breaks ``guard`` (None: it holds)."""
    if value is None:
        return "the scorer did not report it"
    if not math.isfinite(value):
        return f"the scorer measured {value}"
    if guard.min is not None and value < guard.min:
        return f"{value:.4g} is below its minimum {guard.min:.4g}"
    if guard.max is not None and value > guard.max:
        return f"{value:.4g} is above its maximum {guard.max:.4g}"
    if guard.max_regression is not None and champion is not None and math.isfinite(champion):
        loss = -_gain(guard.goal, value, champion)
        if loss > guard.max_regression:
            return (f"{value:.4g} regresses by {loss:.4g} from the champion's {champion:.4g} "
                    f"(at most {guard.max_regression:.4g} allowed)")
    return None


def check_guards(spec: TaskSpec, measured: dict[str, float], champion_metrics: dict[str, float]) -> list[Finding]:
    """One finding per broken guard; a candidate with any is not promoted, whatever its objective."""
    findings = []
    for guard in spec.guards:
        why = _guard(guard, measured.get(guard.metric), champion_metrics.get(guard.metric))
        if why:
            findings.append(Finding(rule="guard", severity="high",
                                    message=f"guard on {guard.metric!r} broken: {why}"))
    return findings
