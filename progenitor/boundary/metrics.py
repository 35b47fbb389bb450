"""Metric lines: what a command printed about its numbers, read as the contract says.

The contract: ``name: value`` lines (the greppable summary) and lines holding one JSON
object (its numeric members). The trusted scorer's output and a candidate's own words
(its self-report) are both read here, and nothing else is read as a metric: not
``name = value`` (a training script that echoes its config, ``lr = 0.01``, would otherwise
become its self-report), not ``name value``, not a JSON array. A line longer than
``jsonl.MAX_LINE_BYTES``, or JSON nested deeper than ``jsonl.MAX_DEPTH``, is no metric line.
"""

from __future__ import annotations

import re
from typing import Optional

from progenitor.boundary.jsonl import MAX_LINE_BYTES, parse_line

__all__ = ["parse_metrics"]

_METRIC = re.compile(
    # One way only to read each digit (``\d+\.?\d*`` could split a run of digits n ways, and a
    # 64 KiB line of digits then took minutes to refuse): the pattern is linear in the line.
    r"^\s*([A-Za-z_][\w./-]*)\s*:\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?nan|[-+]?inf)\s*$",
    re.IGNORECASE,
)


MAX_METRICS = 256
"""Most metrics read from one output (the rest are ignored: a record stays small)."""
MAX_NAME = 128
"""Longest metric name read."""
_NAME = re.compile(r"[A-Za-z_][\w./-]*")


def _number(value: object) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:  # an integer of 400 digits
        return None


def _json_metrics(line: str) -> Optional[dict[str, float]]:
    """A line holding one JSON object -> its numeric members under metric-like names (others
    ignored), else None."""
    line = line.strip()
    if not (line.startswith("{") and line.endswith("}")):
        return None
    data = parse_line(line)  # bounded: a line nested ten thousand deep is no metric line
    if not isinstance(data, dict):
        return None
    found = {k: _number(v) for k, v in data.items() if len(k) <= MAX_NAME and _NAME.fullmatch(k)}
    return {k: v for k, v in found.items() if v is not None}


def parse_metrics(text: str) -> dict[str, float]:
    """The metrics a command printed: ``name: value`` lines (the greppable summary) and lines
    holding one JSON object (``{"rmse": 54.9, "mae": 40.1}``: its numbers); the last one wins."""
    metrics: dict[str, float] = {}
    for line in text.splitlines():
        if len(line) > MAX_LINE_BYTES:
            continue
        match = _METRIC.match(line)
        found = {match.group(1): float(match.group(2))} if match else _json_metrics(line) or {}
        for name, value in found.items():
            if len(name) <= MAX_NAME and (name in metrics or len(metrics) < MAX_METRICS):
                metrics[name] = value
    return metrics
