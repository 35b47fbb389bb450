"""The causality probe's power: how often it catches a model that reads ahead, by how much of the
time the model reads ahead and how many probe windows are used.

The probe's own code (``causality.plan_runs`` and ``check_probes``) runs on the charlm example's
holdout text (``--data``: a directory its prepare.py wrote) with a model whose outputs are
computed here, in numpy, so that thousands of scorings take seconds: an honest bigram model
fitted on the training text, and cheats that add ``--boost`` nats to the logit of the *next*
token at a share ``f`` of the positions (``round(f * (context - 1))`` of them, at least one, chosen
afresh per run, as a cheat that hides would choose them). For each (f, probes) it scores ``--runs`` times with fresh seeds and prints
the share of runs failed with ``causality``, beside the model 1 - (1 - f) ** probes, and the
probe's cost: its windows as a share of the holdout's.

    python bench/causality_power.py --data DATA [--runs 200] [--context 128]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from progenitor.evaluation import causality


def honest_logits(train: np.ndarray, vocab: int) -> np.ndarray:
    counts = np.ones((vocab, vocab))
    np.add.at(counts, (train[:-1], train[1:]), 1.0)
    return np.log(counts / counts.sum(axis=1, keepdims=True)).astype(np.float32)


def outputs(rows: np.ndarray, table: np.ndarray, peek: np.ndarray, boost: float) -> np.ndarray:
    """The model's outputs for ``rows``; at positions where ``peek`` is set it reads the next token."""
    out = table[rows].copy()
    n, t = rows.shape
    p = np.flatnonzero(peek[: t - 1])
    out[np.arange(n)[:, None], p[None, :], rows[:, p + 1]] += boost
    return out


def caught(inputs: np.ndarray, table: np.ndarray, share: float, probes: int, seed: int, boost: float) -> bool:
    rng = np.random.default_rng(10_000 + seed)
    positions = inputs.shape[1] - 1
    peek = np.zeros(inputs.shape[1], dtype=bool)
    peek[rng.choice(positions, size=max(1, round(share * positions)), replace=False)] = True
    feeds, made = causality.plan_runs(inputs, probes, seed)
    # The model's output for a row depends on that row alone, so only the probed windows' real
    # outputs are computed (the rest would not be compared).
    real = np.zeros((len(inputs), inputs.shape[1], table.shape[1]), dtype=np.float32)
    probed = np.unique([p.window for p in made])
    real[probed] = outputs(inputs[probed], table, peek, boost)
    probe_out: list = [None] * len(made)
    for feed in feeds:
        rows = np.flatnonzero(feed.origin < 0)
        out = outputs(feed.rows[rows], table, peek, boost)
        for row, o in zip(rows, out):
            probe_out[-1 - feed.origin[row]] = o
    worst, _ = causality.check_probes(real, probe_out, made, 1e-3)
    return worst is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--context", type=int, default=128)
    parser.add_argument("--boost", type=float, default=2.0)
    args = parser.parse_args()
    train = np.load(args.data / "train.npy").astype(np.int64)
    holdout = np.load(args.data / "holdout.npy").astype(np.int64)
    table = honest_logits(train, 98)
    inputs, _ = causality.windows(holdout, args.context)
    print(f"{len(inputs)} holdout windows of {args.context}; {args.runs} runs per row")
    for probes in (64, 256):
        for share in (1.0, 0.1, 0.02, 0.01):
            rate = np.mean([caught(inputs, table, share, probes, seed, args.boost) for seed in range(args.runs)])
            peeks = max(1, round(share * (args.context - 1)))
            model = 1 - (1 - peeks / (args.context - 1)) ** probes
            print(f"probes {probes:4d} ({probes / len(inputs):.0%} more windows), reads ahead at {share:5.0%} of "
                  f"positions ({peeks} of {args.context - 1}): caught in {rate:.1%} of runs (1 - (1 - f)^n: {model:.1%})")


if __name__ == "__main__":
    main()
