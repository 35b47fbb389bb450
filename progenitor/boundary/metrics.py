"""Metric lines: what a command printed about its numbers, read as the contract says.

The contract: ``name: value`` lines (the greppable summary) and lines holding one JSON
object (its numeric members). The trusted scorer's output and a candidate's own words
(its self-report) are both read here, and nothing else is read as a metric: not
``name = value`` (a training script that echoes its config, ``lr = 0.01``, would otherwise
become its self-report), not ``name value``, not a JSON array.
"""

from __future__ import annotations

import json
import re
from typing import Optional

__all__ = ["parse_metrics"]

_METRIC = re.compile(
    r"^\s*([A-Za-z_][\w./-]*)\s*:\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?nan|[-+]?inf)\s*$",
    re.IGNORECASE,
)


def _json_metrics(line: str) -> Optional[dict[str, float]]:
    """A line holding one JSON object -> its numeric members (others ignored), else None."""
    line = line.strip()
    if not (line.startswith("{") and line.endswith("}")):
        return None
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    return {str(k): float(v) for k, v in data.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def parse_metrics(text: str) -> dict[str, float]:
    """The metrics a command printed: ``name: value`` lines (the greppable summary) and lines
    holding one JSON object (``{"rmse": 54.9, "mae": 40.1}``: its numbers); the last one wins."""
    metrics: dict[str, float] = {}
    for line in text.splitlines():
        match = _METRIC.match(line)
        if match:
            metrics[match.group(1)] = float(match.group(2))
            continue
        found = _json_metrics(line)
        if found:
            metrics.update(found)
    return metrics
