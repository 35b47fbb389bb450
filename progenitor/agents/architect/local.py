"""A small step from a parent's values: how the offline search tunes the node a candidate is
built on, beside the sampler's proposals from anywhere in the space.

Each knob moves with probability ``2 / d`` (``d`` knobs; at least one moves): a number by a
Gaussian step of ``sigma`` of its range (on the log scale for a log knob), reflected at the
bounds and rounded for an int; a categorical to another of its choices. Small budgets are won
near a good starting point more often than far from it: a human's baseline is rarely a random
point of the space it declares.
"""

from __future__ import annotations

import math
import random
from typing import Any

from progenitor.task.spec import Param, SearchSpace

__all__ = ["SIGMA", "neighbour"]

SIGMA = 0.15
"""The step, as a share of a knob's range (``bench/search_quality.py`` chose it)."""


def _unit(p: Param, value: float) -> float:
    if p.log:
        return (math.log(value) - math.log(p.low)) / (math.log(p.high) - math.log(p.low))
    return (value - p.low) / (p.high - p.low)


def _value(p: Param, u: float) -> Any:
    u = min(1.0, max(0.0, u))
    x = math.exp(math.log(p.low) + u * (math.log(p.high) - math.log(p.low))) if p.log else p.low + u * (p.high - p.low)
    if p.step and not p.log:
        x = p.low + round((x - p.low) / p.step) * p.step
    if p.type == "int":
        return int(min(p.high, max(p.low, round(x))))
    return float(min(p.high, max(p.low, x)))


def _move(p: Param, value: Any, rng: random.Random, sigma: float) -> Any:
    if p.type == "categorical":
        others = [c for c in p.choices or [] if c != value]
        return rng.choice(others) if others else value
    if not isinstance(value, (int, float)) or not p.low <= value <= p.high:
        return _value(p, rng.random())  # a value outside the space: start anywhere
    u = _unit(p, float(value)) + rng.gauss(0.0, sigma)
    u = -u if u < 0 else (2 - u if u > 1 else u)  # reflected at the bounds
    moved = _value(p, u)
    if moved == value and p.type == "int":  # a step smaller than one unit: take one
        moved = int(min(p.high, max(p.low, value + (1 if rng.random() < 0.5 else -1))))
    return moved


def neighbour(space: SearchSpace, params: dict[str, Any], rng: random.Random, sigma: float = SIGMA) -> dict[str, Any]:
    """Values near ``params`` (each declared knob; one missing from ``params`` is drawn anywhere)."""
    names = list(space.params)
    chance = min(1.0, 2.0 / max(1, len(names)))
    for _ in range(100):
        out = {}
        for name in names:
            p = space.params[name]
            current = params.get(name)
            if current is None:
                out[name] = _move(p, None, rng, sigma)
            elif rng.random() < chance:
                out[name] = _move(p, current, rng, sigma)
            else:
                out[name] = current
        if any(out[n] != params.get(n) for n in names):
            return out
    return out
