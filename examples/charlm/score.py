"""The sealed evaluation of the charlm task. Trusted: progenitor runs this file from the base commit.

With ``evaluate: model`` progenitor itself runs the candidate's model in a scoring sandbox on
the holdout windows, checks its outputs (shape, dtype, finite values, the causality probe),
normalises them with a log-softmax and takes the log-probability of each true next character.
This file reads that array (``{outputs}``: one float64 per scored position, in nats) and prints:

  bits_per_char   mean negative log2-probability of the true next character (the objective)
  loss            the same in nats (the cross-entropy a training loop reports)
  perplexity      2 ** bits_per_char, per character

It never sees a model, a candidate file or a pickle. Bad input exits non-zero with one sentence.

Usage: python score.py --logprobs LOGPROBS.npy
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np


def score(path: Path) -> dict[str, float]:
    logprobs = np.load(path, allow_pickle=False)
    if logprobs.ndim != 1 or len(logprobs) == 0 or not np.issubdtype(logprobs.dtype, np.floating):
        raise ValueError(f"expected a non-empty 1-D float array of log-probabilities, got {logprobs.dtype} {logprobs.shape}")
    if not np.isfinite(logprobs).all() or (logprobs > 1e-9).any():
        raise ValueError("log-probabilities must be finite and at most 0")
    nats = float(-logprobs.mean())
    return {"bits_per_char": nats / math.log(2), "loss": nats, "perplexity": 2 ** (nats / math.log(2))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logprobs", required=True, type=Path, help="progenitor's checked log-probabilities, .npy")
    args = parser.parse_args()
    try:
        metrics = score(args.logprobs)
    except (OSError, ValueError) as exc:
        sys.exit(f"score.py: {exc}")
    for name, value in metrics.items():
        print(f"{name}: {value:.6f}")


if __name__ == "__main__":
    main()
