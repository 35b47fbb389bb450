"""Promotion above the noise: does a candidate's gain over the champion hold example by example?

A holdout of a few hundred examples is noisy: a candidate that gets one more of 359 digits
right than the champion "beats" it, and a search that compares dozens of candidates finds such
a one by luck alone. When the scorer reports a score per holdout example
(``{scores}/per_example.npy``: one number per example whose mean moves with the objective, e.g.
1/0 for a correct/wrong digit, the squared error for RMSE), the two models are compared on the
same examples, which cancels most of the noise that the examples themselves bring:

- **0/1 scores** (accuracy): the exact one-sided sign test on the examples where the two differ
  (McNemar's exact test): under "no better", each such example is a fair coin, so the chance of
  ``wins`` or more of ``wins + losses`` is a binomial tail.
- **other scores**: the paired bootstrap (Efron & Tibshirani 1993; Koehn 2004 for model
  comparison): the per-example differences are resampled with replacement ``BOOTSTRAP`` times;
  the p-value is the share of resampled mean differences that are not a gain.

The level is ``objective.significance`` divided by the number of candidates the one tested was
chosen from (Bonferroni): the best of ``m`` is tested, and picking the best of ``m`` makes a
chance gain ``m`` times as likely. Pure: arrays in, a ``PairedTest`` out.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import numpy as np

from progenitor.candidate.evidence import BOOTSTRAP, PairedTest

__all__ = ["BOOTSTRAP", "MAX_EXAMPLES", "PER_EXAMPLE_FILE", "PairedTest", "load_per_example", "paired_test", "versus"]

PER_EXAMPLE_FILE = "per_example.npy"
"""What a scorer may write into ``{scores}``: one score per holdout example (1-D, numeric)."""
MAX_EXAMPLES = 10_000_000
"""A per-example file longer than this is not read (the trusted scorer wrote it, but bounds are cheap)."""


def load_per_example(path: Path, expected: Optional[int] = None) -> tuple[Optional[np.ndarray], str]:
    """The per-example scores a trusted scorer wrote, or (None, why they cannot be used)."""
    if not path.is_file():
        return None, ""
    try:
        mapped = np.load(path, allow_pickle=False, mmap_mode="r")  # the header first: shape and type
        if mapped.ndim != 1 or not 0 < mapped.shape[0] <= MAX_EXAMPLES:
            return None, f"{path.name} must be a 1-D array of at most {MAX_EXAMPLES} scores, not of shape {mapped.shape}"
        if not (np.issubdtype(mapped.dtype, np.number) or mapped.dtype == np.bool_):
            return None, f"{path.name} must hold numbers, not {mapped.dtype}"
        scores = np.array(mapped, dtype=np.float64)
        del mapped
    except (OSError, ValueError) as exc:
        return None, f"{path.name} could not be read as a numeric .npy array: {exc}"
    if not np.isfinite(scores).all():
        return None, f"{path.name} holds NaN or infinite scores"
    if expected is not None and scores.shape[0] != expected:
        return None, f"{path.name} has {scores.shape[0]} scores for {expected} holdout examples"
    return scores, ""


def _sign_p(wins: int, losses: int) -> float:
    """P(X >= wins) for X ~ Binomial(wins + losses, 1/2): exact, in log space for large counts."""
    n = wins + losses
    if n == 0:
        return 1.0
    from scipy.stats import binom

    return float(binom.sf(wins - 1, n, 0.5))


def _bootstrap_p(diff: np.ndarray, seed: int = 0) -> float:
    """Share of resampled mean differences that are no gain (<= 0), with the +1 correction."""
    rng = np.random.default_rng(seed)
    n = diff.shape[0]
    not_gains = 0
    chunk = max(1, min(BOOTSTRAP, 2_000_000 // n))  # bounded memory for a large holdout
    done = 0
    while done < BOOTSTRAP:
        size = min(chunk, BOOTSTRAP - done)
        means = diff[rng.integers(0, n, size=(size, n))].mean(axis=1)
        not_gains += int((means <= 0).sum())
        done += size
    return (not_gains + 1) / (BOOTSTRAP + 1)


def versus(candidate: Optional[np.ndarray], champion: Optional[np.ndarray], goal: str,
           significance: Optional[float], compared: int = 1) -> Optional[PairedTest]:
    """The paired test of ``candidate`` against ``champion``, or None where none applies: the
    level is null, or either model has no per-example scores (None or empty), or they are of
    different lengths. Without a test a gain is promoted on the holdout figure."""
    if significance is None or candidate is None or champion is None:
        return None
    if candidate.size == 0 or candidate.shape != champion.shape:
        return None
    return paired_test(candidate, champion, goal, significance, compared)


def paired_test(candidate: np.ndarray, champion: np.ndarray, goal: str, significance: float,
                compared: int = 1) -> PairedTest:
    """Is ``candidate`` better than ``champion`` on the same examples, at ``significance / compared``?"""
    if candidate.shape != champion.shape:
        raise ValueError(f"per-example scores of different lengths: {candidate.shape} and {champion.shape}")
    sign = 1.0 if goal == "maximize" else -1.0
    diff = sign * (candidate - champion)
    wins, losses = int((diff > 0).sum()), int((diff < 0).sum())
    binary = bool(np.isin(candidate, (0.0, 1.0)).all() and np.isin(champion, (0.0, 1.0)).all())
    compared = max(1, compared)
    level = significance / compared
    if binary:
        test, p = "sign", _sign_p(wins, losses)
    else:
        test, p = "bootstrap", _bootstrap_p(diff)
    mean_gain = float(diff.mean())
    significant = p < level and mean_gain > 0
    return PairedTest(test=test, examples=int(diff.shape[0]), wins=wins, losses=losses,
                      mean_gain=0.0 if math.isclose(mean_gain, 0.0, abs_tol=1e-15) else mean_gain,
                      p_value=p, level=level, compared=compared, significant=significant)
