"""Write the digits task's data splits. Trusted: progenitor runs this file from the base commit.

scikit-learn ships the 8x8 digits inside the package (1,797 images, 64 pixels valued
0-16, 10 classes), so no download is needed and the sandbox can stay offline. The split
is stratified and seeded, so every run of every generation scores on the same holdout.

Three splits: train (60%), holdout (20%: selection scores every candidate on it) and test
(20%: scored only for the baseline and each promoted champion, never selected on, so the
run's final figure is not flattered by the search).

Writes into --out:
  train.npz            x (n, 64) float32, y (n,) int64  -- what a candidate trains on
  holdout_inputs.npy   (m, 64) float32                  -- what a candidate predicts on
  holdout_labels.npy   (m,) int64                       -- never shown to a candidate
  test_inputs.npy      (t, 64) float32                  -- predicted on too
  test_labels.npy      (t,) int64                       -- never shown to a candidate

Usage: python prepare.py --out DATA_DIR
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

HOLDOUT_FRACTION = 0.2  # ~360 images: one image moves accuracy by ~0.3%
TEST_FRACTION = 0.2  # as many again, kept for the final, honest figure
SEED = 1234  # fixed forever; changing it changes every past score's meaning


def split(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of (train, holdout, test), stratified by class so each keeps the class balance."""
    rng = np.random.default_rng(SEED)
    train, holdout, test = [], [], []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        n_holdout = int(round(len(members) * HOLDOUT_FRACTION))
        n_test = int(round(len(members) * TEST_FRACTION))
        holdout.append(members[:n_holdout])
        test.append(members[n_holdout:n_holdout + n_test])
        train.append(members[n_holdout + n_test:])
    # Shuffle across classes so that a file read in order is not sorted by label.
    return tuple(rng.permutation(np.concatenate(part)) for part in (train, holdout, test))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="directory to write the splits into")
    args = parser.parse_args()

    from sklearn.datasets import load_digits  # slow import (~1 s): only this script needs it

    digits = load_digits()
    x = digits.data.astype(np.float32)
    y = digits.target.astype(np.int64)
    train, holdout, test = split(x, y)

    args.out.mkdir(parents=True, exist_ok=True)
    np.savez(args.out / "train.npz", x=x[train], y=y[train])
    np.save(args.out / "holdout_inputs.npy", x[holdout])
    np.save(args.out / "holdout_labels.npy", y[holdout])
    np.save(args.out / "test_inputs.npy", x[test])
    np.save(args.out / "test_labels.npy", y[test])
    print(f"train: {len(train)}")
    print(f"holdout: {len(holdout)}")
    print(f"test: {len(test)}")


if __name__ == "__main__":
    main()
