"""Train the gradient-boosted trees and predict the holdout and test inputs. This file (with
config.yaml) is what candidates change; prepare.py and score.py are the fixed evaluation.

Reads config.yaml, fits scikit-learn's GradientBoostingRegressor on {data}/train.npz, and
writes into --out:
  predictions.npy       float64 (n,): predicted progression for {data}/holdout_inputs.npy
  test_predictions.npy  the same for {data}/test_inputs.npy (the task's final test split)
then prints greppable ``key: value`` lines. Same config and seed, same numbers.

Usage: python train.py --data DATA_DIR --out OUT_DIR [--seed N] [--config config.yaml]
(``--seed`` is added to the config's seed: progenitor passes {seed} when it trains a
candidate again with other seeds, ``objective.repeats``.)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Config(BaseModel):
    """What config.yaml must hold; the values and the reasons for them live in that file."""

    model_config = ConfigDict(extra="forbid", frozen=True)  # an unknown key is a typo, not a new knob

    learning_rate: float = Field(gt=0.0, le=1.0)  # shrinkage of each tree's contribution
    n_estimators: int = Field(ge=1)  # trees, fitted one after another on the residuals
    max_depth: int = Field(ge=1)  # depth of each tree: 1 is additive, 3 lets three features interact
    min_samples_leaf: int = Field(ge=1)  # smallest leaf: larger leaves average more patients
    subsample: float = Field(gt=0.0, le=1.0)  # share of patients each tree sees (below 1: stochastic boosting)
    max_features: float = Field(gt=0.0, le=1.0)  # share of the 10 features each split may choose from
    seed: int  # seeds the subsampling and the feature choice: reruns are identical


def load_config(path: Path) -> Config:
    """Read config.yaml; a missing, unknown or mistyped key is an error naming it."""
    return Config.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def fit(cfg: Config, data: Path, seed: int = 0):
    """The fitted model (the bench calls this in-process, with the same config)."""
    from sklearn.ensemble import GradientBoostingRegressor

    with np.load(data / "train.npz", allow_pickle=False) as split:
        x, y = split["x"], split["y"]
    model = GradientBoostingRegressor(
        learning_rate=cfg.learning_rate, n_estimators=cfg.n_estimators, max_depth=cfg.max_depth,
        min_samples_leaf=cfg.min_samples_leaf, subsample=cfg.subsample, max_features=cfg.max_features,
        random_state=cfg.seed + seed)
    return model.fit(x, y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="directory holding train.npz and the inputs")
    parser.add_argument("--out", required=True, type=Path, help="directory to write outputs into")
    parser.add_argument("--seed", type=int, default=0, help="added to the config's seed (a repeat's training)")
    parser.add_argument("--config", type=Path, default=Path(__file__).with_name("config.yaml"))
    args = parser.parse_args()
    try:
        cfg = load_config(args.config)
    except ValidationError as exc:
        problem = exc.errors()[0]
        sys.exit(f"train.py: bad config: {'.'.join(map(str, problem['loc']))}: {problem['msg']}")
    except (OSError, yaml.YAMLError) as exc:
        sys.exit(f"train.py: bad config: {exc}")

    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    model = fit(cfg, args.data, args.seed)
    seconds = time.perf_counter() - start
    np.save(args.out / "predictions.npy", model.predict(np.load(args.data / "holdout_inputs.npy", allow_pickle=False)))
    np.save(args.out / "test_predictions.npy", model.predict(np.load(args.data / "test_inputs.npy", allow_pickle=False)))
    print(f"train_rmse: {float(np.sqrt(model.train_score_[-1])) if hasattr(model, 'train_score_') else float('nan'):.4f}")
    print(f"trees: {cfg.n_estimators}")
    print(f"train_seconds: {seconds:.2f}")


if __name__ == "__main__":
    main()
