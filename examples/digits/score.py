"""The sealed evaluation of the digits task. Trusted: progenitor runs this file from the base commit.

With ``evaluate: model`` progenitor runs the candidate's predict function in a scoring sandbox
on the holdout images, checks what it returns (one finite row per image) and hands this file
that array (``{outputs}``), with the holdout labels (which no candidate ever sees). It prints
one ``metric: value`` line per metric:

  accuracy   share of holdout images whose most probable class is the label
  log_loss   mean negative log-probability of the label (probabilities clipped at 1e-7)
  ece        expected calibration error over 15 equal-width confidence bins

With ``--scores DIR`` (progenitor's ``{scores}``) it also writes ``DIR/per_example.npy``: 1 for
each image classified right, 0 for each one wrong. progenitor then promotes a candidate only when
its gain over the champion holds image by image (an exact sign test), not when it is one or two
images of 359 that luck could give.

The parameter count (``params``, the guard) and the evaluation's seconds are progenitor's own
measurements, taken from the weights' safetensors header and from outside the sandbox. This file
never sees a model, a candidate file or a pickle. Bad input exits non-zero with one sentence.

Usage: python score.py --outputs P.npy --labels L.npy [--scores DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

N_CLASSES = 10
ECE_BINS = 15  # the usual choice in the calibration literature (Guo et al., 2017)
PROB_EPS = 1e-7  # keeps one confident mistake from making log_loss infinite
SUM_TOLERANCE = 1e-3  # float32 softmax rows sum to 1 within ~1e-6; logits do not


class BadInput(Exception):
    """The candidate's outputs cannot be scored."""


def load_array(path: Path, what: str) -> np.ndarray:
    if not path.is_file():
        raise BadInput(f"{what} file {path} does not exist")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise BadInput(f"{what} file {path} is not a plain .npy array ({exc})") from None


def check_predictions(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Return the probabilities as float64 rows summing to 1, or raise BadInput."""
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise BadInput(f"labels must be a 1-D integer array, got {labels.dtype} with shape {labels.shape}")
    if len(labels) == 0 or labels.min() < 0 or labels.max() >= N_CLASSES:
        raise BadInput(f"labels must be a non-empty array of classes 0..{N_CLASSES - 1}")
    if probs.shape != (len(labels), N_CLASSES):
        raise BadInput(f"predictions must have shape ({len(labels)}, {N_CLASSES}), got {probs.shape}")
    if not np.issubdtype(probs.dtype, np.floating):
        raise BadInput(f"predictions must be floating-point probabilities, got dtype {probs.dtype}")
    probs = probs.astype(np.float64)
    if not np.isfinite(probs).all():
        raise BadInput("predictions contain NaN or infinite values")
    if (probs < 0).any():
        raise BadInput("predictions contain negative values; write probabilities (softmax), not logits")
    worst = float(np.abs(probs.sum(axis=1) - 1.0).max())
    if worst > SUM_TOLERANCE:
        raise BadInput(f"prediction rows must sum to 1 (worst row is off by {worst:.3g}); write softmax probabilities")
    return probs / probs.sum(axis=1, keepdims=True)


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Weighted mean gap between confidence and accuracy over equal-width confidence bins."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    # Bin i holds confidences in (i/bins, (i+1)/bins]; confidence is always > 1/N_CLASSES > 0.
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            ece += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(ece)


def correct(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """1.0 for each image whose most probable class is its label, else 0.0: accuracy is their mean."""
    return (probs.argmax(axis=1) == labels).astype(np.float64)


def score(predictions: Path, labels_path: Path, scores: Path | None = None) -> dict[str, float]:
    labels = load_array(labels_path, "labels")
    probs = check_predictions(load_array(predictions, "predictions"), labels)
    if scores is not None:
        np.save(scores / "per_example.npy", correct(probs, labels))
    picked = np.clip(probs[np.arange(len(labels)), labels], PROB_EPS, 1.0)
    metrics = {
        "accuracy": float(correct(probs, labels).mean()),
        "log_loss": float(-np.log(picked).mean()),
        "ece": expected_calibration_error(probs, labels),
    }
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outputs", required=True, type=Path, help="the candidate's checked (n, 10) probabilities, .npy")
    parser.add_argument("--labels", required=True, type=Path, help="holdout labels, .npy")
    parser.add_argument("--scores", type=Path, help="directory to write per_example.npy into (1 right, 0 wrong)")
    args = parser.parse_args()
    try:
        metrics = score(args.outputs, args.labels, args.scores)
    except BadInput as exc:
        sys.exit(f"score.py: {exc}")
    for name, value in metrics.items():
        print(f"{name}: {value:.6f}")


if __name__ == "__main__":
    main()
