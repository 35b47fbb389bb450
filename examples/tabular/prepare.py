"""Write the tabular task's data splits. Trusted: progenitor runs this file from the base commit.

scikit-learn ships the diabetes data inside the package (442 patients, 10 standardised
measurements each, and a measure of disease progression a year later: the label), so no
download is needed and the sandbox can stay offline. The split is seeded: every run of every
generation scores on the same holdout.

Three splits: train (60%), holdout (20%: selection scores every candidate on it) and test
(20%: scored only for the baseline and each promoted champion, never selected on).

Writes into --out:
  train.npz            x (n, 10) float64, y (n,) float64  -- what a candidate trains on
  holdout_inputs.npy   (m, 10) float64                    -- what a candidate predicts on
  holdout_labels.npy   (m,) float64                       -- never shown to a candidate
  test_inputs.npy      (t, 10) float64                    -- predicted on too
  test_labels.npy      (t,) float64                       -- never shown to a candidate

Usage: python prepare.py --out DATA_DIR
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

HOLDOUT_FRACTION = 0.2  # 88 patients: small, as a new user's own tabular data often is, so noisy
TEST_FRACTION = 0.2  # as many again, kept for the final, honest figure
SEED = 1234  # fixed forever; changing it changes every past score's meaning


def split(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of (train, holdout, test): one seeded permutation, cut in three."""
    order = np.random.default_rng(SEED).permutation(n)
    n_train = int(n * (1 - HOLDOUT_FRACTION - TEST_FRACTION))
    n_holdout = int(n * HOLDOUT_FRACTION)
    return order[:n_train], order[n_train:n_train + n_holdout], order[n_train + n_holdout:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="directory to write the splits into")
    args = parser.parse_args()

    from sklearn.datasets import load_diabetes  # slow import (~1 s): only this script needs it

    x, y = load_diabetes(return_X_y=True)
    train, holdout, test = split(len(x))
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
