"""The sealed evaluation of the tabular task. Trusted: progenitor runs this file from the base commit.

Reads a candidate's predicted progression on the holdout inputs and the holdout labels (which
no candidate ever sees) and prints one ``metric: value`` line per metric:

  rmse   root mean squared error (the objective: lower is better)
  mae    mean absolute error

With ``--scores DIR`` (progenitor's ``{scores}``) it also writes ``DIR/per_example.npy``: each
patient's squared error, whose mean moves with the RMSE. progenitor then promotes a candidate
only when its gain over the champion holds example by example (a paired test), not when the
luck of 88 patients gives it.

It never runs candidate code: predictions load with ``allow_pickle=False``. Bad input exits
non-zero with one sentence on stderr.

Usage: python score.py --predictions P.npy --labels L.npy [--scores DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


class BadInput(Exception):
    """The candidate's outputs cannot be scored."""


def load_array(path: Path, what: str) -> np.ndarray:
    if not path.is_file():
        raise BadInput(f"{what} file {path} does not exist")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise BadInput(f"{what} file {path} is not a plain .npy array ({exc})") from None


def squared_errors(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each example's squared error, or BadInput."""
    if labels.ndim != 1 or len(labels) == 0:
        raise BadInput(f"labels must be a non-empty 1-D array, got shape {labels.shape}")
    predictions = predictions.reshape(-1) if predictions.ndim == 2 and predictions.shape[1] == 1 else predictions
    if predictions.shape != labels.shape:
        raise BadInput(f"predictions must have shape {labels.shape}, got {predictions.shape}")
    if not np.issubdtype(predictions.dtype, np.number) or not np.isfinite(predictions).all():
        raise BadInput("predictions must be finite numbers")
    return (predictions.astype(np.float64) - labels.astype(np.float64)) ** 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictions", required=True, type=Path, help="the candidate's predictions, .npy")
    parser.add_argument("--labels", required=True, type=Path, help="the labels, .npy")
    parser.add_argument("--scores", type=Path, help="directory to write per_example.npy into")
    args = parser.parse_args()
    try:
        labels = load_array(args.labels, "labels")
        errors = squared_errors(load_array(args.predictions, "predictions"), labels)
    except BadInput as exc:
        sys.exit(f"score.py: {exc}")
    if args.scores is not None:
        np.save(args.scores / "per_example.npy", errors)
    print(f"rmse: {float(np.sqrt(errors.mean())):.6f}")
    print(f"mae: {float(np.sqrt(errors).mean()):.6f}")


if __name__ == "__main__":
    main()
