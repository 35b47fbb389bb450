"""Write the digits task's data splits. Trusted: progenitor runs this file from the base commit.

scikit-learn ships the 8x8 digits inside the package (1,797 images, 64 pixels valued
0-16, 10 classes), so no download is needed and the sandbox can stay offline. The split
is stratified and seeded, so every run of every generation scores on the same holdout.

Writes into --out:
  train.npz            x (n, 64) float32, y (n,) int64  -- what a candidate trains on
  holdout_inputs.npy   (m, 64) float32                  -- what a candidate predicts on
  holdout_labels.npy   (m,) int64                       -- never shown to a candidate

Usage: python prepare.py --out DATA_DIR
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

HOLDOUT_FRACTION = 0.3  # ~540 images: enough that one image moves accuracy by only ~0.2%
SEED = 1234  # fixed forever; changing it changes every past score's meaning


def split(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of (train, holdout), stratified by class so both keep the class balance."""
    rng = np.random.default_rng(SEED)
    train, holdout = [], []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        n_holdout = int(round(len(members) * HOLDOUT_FRACTION))
        holdout.append(members[:n_holdout])
        train.append(members[n_holdout:])
    # Shuffle across classes so that a file read in order is not sorted by label.
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(holdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="directory to write the splits into")
    args = parser.parse_args()

    from sklearn.datasets import load_digits  # slow import (~1 s): only this script needs it

    digits = load_digits()
    x = digits.data.astype(np.float32)
    y = digits.target.astype(np.int64)
    train, holdout = split(x, y)

    args.out.mkdir(parents=True, exist_ok=True)
    np.savez(args.out / "train.npz", x=x[train], y=y[train])
    np.save(args.out / "holdout_inputs.npy", x[holdout])
    np.save(args.out / "holdout_labels.npy", y[holdout])
    print(f"train: {len(train)}")
    print(f"holdout: {len(holdout)}")


if __name__ == "__main__":
    main()
