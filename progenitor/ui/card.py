"""The card a person decides from, as the templates lay it out: each metric with its direction,
its guard's limits and how the candidate moved it; the selection-luck bound against the gain;
the test split's figures; growth flagged; cost in units a person reads. Made from the gate's
request (its ``context``, built by the run: ``workflows.card``) or a candidate's record."""

from __future__ import annotations

from typing import Any, Optional

__all__ = ["cost_text", "guard_text", "luck_text", "metric_rows", "number", "test_text"]


def number(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "–"
    return f"{value:.{digits}g}"


def guard_text(limits: dict) -> str:
    parts = []
    if limits.get("min") is not None:
        parts.append(f"at least {number(limits['min'])}")
    if limits.get("max") is not None:
        parts.append(f"at most {number(limits['max'])}")
    if limits.get("max_regression") is not None:
        parts.append(f"≤ {number(limits['max_regression'])} worse than the champion")
    if limits.get("max_drift") is not None:
        parts.append(f"≤ {number(limits['max_drift'])} worse than the baseline")
    return "; ".join(parts)


def _verdict(goal: Optional[str], change: Optional[float]) -> str:
    """better / worse / same, when the metric has a direction."""
    if goal is None or change is None or change == 0:
        return ""
    return "better" if (change > 0) == (goal == "maximize") else "worse"


def metric_rows(mine: dict, champion: dict, baseline: dict, directions: dict) -> list[dict]:
    """One row per metric: values, the change against the champion, which way is better, the guard."""
    names = sorted(set(mine) | set(champion) | set(directions), key=lambda n: (not directions.get(n, {}).get("objective"), n))
    rows = []
    for name in names:
        a, b = mine.get(name), champion.get(name)
        change = a - b if isinstance(a, (int, float)) and isinstance(b, (int, float)) else None
        info = directions.get(name, {})
        goal = info.get("goal")
        rows.append({"name": name, "mine": number(a, 6), "champion": number(b, 6), "baseline": number(baseline.get(name), 6),
                     "change": f"{change:+.4g}" if change is not None else "", "verdict": _verdict(goal, change),
                     "direction": {"maximize": "↑ higher is better", "minimize": "↓ lower is better"}.get(goal, ""),
                     "guard": guard_text(info.get("guard", {})), "objective": bool(info.get("objective"))})
    return rows


def luck_text(luck: Optional[dict], gain: Optional[float]) -> tuple[str, bool]:
    """The selection-luck line, and whether the gain lies within the bound (a warning)."""
    if not luck:
        return "", False
    if luck.get("bound") is None:
        return f"Selection luck: not bounded ({luck.get('why', 'unknown')}).", False
    bound = luck["bound"]
    text = (f"Selection luck: up to {number(bound)} ({luck['compared']} compared on {luck['holdout_n']} holdout "
            f"examples, {luck.get('confidence', 0.95):.0%})")
    if gain is None:
        return text + ".", False
    within = gain <= bound
    return (text + f" against a gain of {number(gain)} over the baseline"
            + (": within it, so selection alone may explain the gain." if within else ": beyond it.")), within


def test_text(test: Optional[dict], own: Optional[float] = None) -> str:
    """The test split's figures (a candidate is scored on it only once promoted)."""
    if not test:
        return "No test split: the holdout figure is also the one that selected the candidate."
    mine = f"this candidate {number(own)}" if own is not None else "this candidate: scored once promoted"
    return (f"Test split ({test['metric']}): baseline {number(test.get('baseline'))}, champion "
            f"{number(test.get('champion'))}; {mine}.")


def _seconds(value: float) -> str:
    if value < 120:
        return f"{value:.3g} s"
    if value < 7200:
        return f"{value / 60:.3g} min"
    return f"{value / 3600:.3g} h"


def cost_text(cost: Optional[dict]) -> str:
    """A candidate's cost (or a generation's estimate) in words: CPU time, wall time, LLM dollars."""
    if not cost:
        return ""
    if "cpu_hours" in cost:  # an estimate before training
        parts = [f"{cost.get('candidates', 0)} candidate(s), about {_seconds(cost.get('seconds_each', 0))} each",
                 f"{cost['cpu_hours']:.3g} CPU-hours"]
        if cost.get("gpu_hours"):
            parts.append(f"{cost['gpu_hours']:.3g} GPU-hours")
        if cost.get("dollars"):
            parts.append(f"${cost['dollars']:.4g} of LLM calls")
        return "estimated " + ", ".join(parts)
    parts = [f"{_seconds(cost.get('cpu_seconds', 0))} of CPU", f"{_seconds(cost.get('wall_seconds', 0))} wall"]
    if cost.get("gpu_seconds"):
        parts.append(f"{_seconds(cost['gpu_seconds'])} of GPU")
    if cost.get("attempts", 1) != 1:
        parts.append(f"{cost.get('attempts')} attempts")
    if cost.get("dollars") or cost.get("llm_calls"):
        tokens = cost.get("prompt_tokens", 0) + cost.get("completion_tokens", 0)
        parts.append(f"${cost.get('dollars', 0):.4g} in {cost.get('llm_calls', 0)} LLM call(s), {tokens:,} tokens")
    return ", ".join(parts)
