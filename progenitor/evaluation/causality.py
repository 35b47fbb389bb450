"""Windows of a token stream for a next-token model, and the causality probe over them.

A language model's holdout text is its own label: the token after position p is the target
of position p and the input of position p + 1. Feeding whole windows is only honest if the
output at a position depends on nothing after it. This module builds what the scoring sandbox
is fed and checks what comes back.

**Windows.** Window i is ``context`` tokens starting at ``i * (context + 1)``; its targets are
the same tokens shifted by one. The stride leaves one token between windows that is a target
and never an input, so no window holds the answer to another's last position.

**The probe** (``positions: all``). The windows are split at random into two halves, A and B,
scored by two sandboxes that share nothing (nothing either writes is kept). A probe copies a
window w up to a random position j and continues it with another stretch of holdout text (one
whose first token differs from w's own). Probes of A's windows run with B and the other way
round, shuffled in among the real windows, with their continuations taken from the windows of
the sandbox they run in, so that no sandbox ever holds w's text after j unless it holds w
itself. An honest model gives the probe the same outputs as w at positions 0..j; one that reads
ahead (from w itself, or from any other window) cannot, since what it would read differs
between the two sandboxes. Outputs are compared after log-softmax, within ``tolerance`` nats.

**positions: last** scores only each window's last position, whose target is in no window:
causal by construction, no probe needed, one position per window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

__all__ = ["Probe", "RunFeed", "Violation", "check_probes", "log_softmax", "plan_runs", "target_logprobs", "windows"]

SPLICE_TRIES = 32
"""Continuations tried per probe before one whose first token differs from the window's is given up."""


def windows(tokens: np.ndarray, context: int) -> tuple[np.ndarray, np.ndarray]:
    """(inputs (n, context), targets (n, context)) at stride ``context + 1``."""
    starts = np.arange(0, len(tokens) - context, context + 1)
    index = starts[:, None] + np.arange(context)[None, :]
    return tokens[index], tokens[index + 1]


@dataclass
class Probe:
    window: int
    """The real window it copies up to ``j``."""
    j: int
    """Positions 0..j must not change."""
    row: np.ndarray = field(repr=False)


@dataclass
class RunFeed:
    """What one scoring sandbox is fed: rows, and where each came from."""

    rows: np.ndarray
    origin: np.ndarray
    """Per row: the real window's index (>= 0), or ``-1 - p`` for probe p."""


def plan_runs(inputs: np.ndarray, probes: int, seed: int) -> tuple[list[RunFeed], list[Probe]]:
    """The sandboxes' feeds: one run of every window when there are no probes, else two
    halves each with the other's probes, shuffled (see the module docstring)."""
    n, context = inputs.shape
    if probes == 0 or n < 2:
        return [RunFeed(rows=inputs, origin=np.arange(n))], []
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    halves = [np.sort(order[: n // 2]), np.sort(order[n // 2:])]
    made: list[Probe] = []
    feeds = []
    for side, own in enumerate(halves):
        other = halves[1 - side]  # its probes copy the other half's windows
        count = probes // 2 + (probes % 2 if side == 0 else 0)
        targets = rng.choice(other, size=count, replace=count > len(other))
        mine = [p for p in (_probe(inputs, int(w), own, rng) for w in targets) if p is not None]
        ids = np.arange(len(made), len(made) + len(mine))
        made += mine
        rows = np.concatenate([inputs[own], *([np.stack([p.row for p in mine])] if mine else [])])
        origin = np.concatenate([own, -1 - ids])
        shuffle = rng.permutation(len(rows))
        feeds.append(RunFeed(rows=rows[shuffle], origin=origin[shuffle]))
    return feeds, made


def _probe(inputs: np.ndarray, w: int, donors: np.ndarray, rng: np.random.Generator) -> Optional[Probe]:
    """Window ``w`` up to a random j, continued with text from one of ``donors``' windows."""
    context = inputs.shape[1]
    j = int(rng.integers(0, context - 1))
    length = context - 1 - j
    for _ in range(SPLICE_TRIES):
        donor = inputs[int(rng.choice(donors))]
        at = int(rng.integers(0, context - length + 1))
        tail = donor[at:at + length]
        if tail[0] != inputs[w, j + 1]:
            return Probe(window=w, j=j, row=np.concatenate([inputs[w, : j + 1], tail]))
    return None


def log_softmax(x: np.ndarray) -> np.ndarray:
    """Along the last axis, in float64: whatever scale the candidate's outputs have, these are
    log-probabilities (so unnormalised outputs cannot lower a loss)."""
    x = np.asarray(x, dtype=np.float64)
    top = x.max(axis=-1, keepdims=True)
    return x - top - np.log(np.exp(x - top).sum(axis=-1, keepdims=True))


def target_logprobs(outputs: np.ndarray, targets: np.ndarray, chunk: int = 64) -> np.ndarray:
    """Log-probability of each target, normalised here: outputs (n, T, V) or (n, V), targets (n, T) or (n,)."""
    picked = np.empty(targets.shape, dtype=np.float64)
    for start in range(0, len(targets), chunk):
        lp = log_softmax(outputs[start:start + chunk])
        t = targets[start:start + chunk]
        picked[start:start + chunk] = np.take_along_axis(lp, t[..., None].astype(np.int64), axis=-1)[..., 0]
    return picked


@dataclass
class Violation:
    probe: Probe
    position: int
    change: float


def check_probes(real: np.ndarray, probe_outputs: list[np.ndarray], made: list[Probe], tolerance: float
                 ) -> tuple[Optional[Violation], int]:
    """(the worst probe whose outputs at 0..j moved by more than ``tolerance``, or None; how many moved)."""
    worst: Optional[Violation] = None
    moved = 0
    for probe, out in zip(made, probe_outputs):
        keep = probe.j + 1
        diff = np.abs(log_softmax(out[:keep]) - log_softmax(real[probe.window, :keep])).max(axis=-1)
        if not np.all(diff <= tolerance):  # NaN counts as moved
            moved += 1
            position = int(np.argmax(np.where(np.isnan(diff), np.inf, diff)))
            change = float(diff[position])
            if worst is None or not change <= worst.change:
                worst = Violation(probe=probe, position=position, change=change)
    return worst, moved
