"""Train the digits MLP. This is the file (with model.py and config.yaml) that candidates
change; prepare.py and score.py are the fixed evaluation.

Reads config.yaml, trains on {data}/train.npz minus a validation split it carves for
itself, and writes into --out:
  progress.jsonl      one JSON line per epoch: {"step", "train_loss", "val_accuracy"}
  model.safetensors   the trained weights (tensors only: progenitor counts them from the header)
then prints a greppable summary of ``key: value`` lines. Same config, same numbers.

It never predicts the holdout: progenitor's scoring sandbox calls model.predict on it.

Usage: python train.py --data DATA_DIR --out OUT_DIR [--config config.yaml]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import yaml
from model import MLP, PIXEL_MAX
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from safetensors.torch import save_file
from torch import nn


class Config(BaseModel):
    """What config.yaml must hold; the values and the reasons for them live in that file."""

    model_config = ConfigDict(extra="forbid", frozen=True)  # an unknown key is a typo, not a new knob

    hidden: int = Field(ge=1)  # units per hidden layer
    depth: int = Field(ge=1)  # number of hidden layers
    activation: Literal["relu", "gelu", "tanh", "silu"]
    dropout: float = Field(ge=0.0, lt=1.0)  # drop probability after each hidden layer, during training only
    lr: float = Field(gt=0.0)  # AdamW learning rate, constant over training
    epochs: int = Field(ge=1)  # full passes over the training split
    batch_size: int = Field(ge=1)  # examples per optimiser step
    weight_decay: float = Field(ge=0.0)  # AdamW's decoupled weight decay
    val_fraction: float = Field(gt=0.0, lt=1.0)  # share of train.npz held back to estimate accuracy
    seed: int  # seeds the validation split, the initial weights and the batch order


def load_config(path: Path) -> Config:
    """Read config.yaml; a missing, unknown or mistyped key is an error naming it."""
    return Config.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def load_data(data: Path, cfg: Config) -> dict[str, torch.Tensor]:
    """Train/validation tensors carved from train.npz."""
    with np.load(data / "train.npz", allow_pickle=False) as split:
        x, y = split["x"], split["y"]
    order = np.random.default_rng(cfg.seed).permutation(len(x))
    n_val = int(round(len(x) * cfg.val_fraction))
    val, train = order[:n_val], order[n_val:]

    def inputs(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a.astype(np.float32) / PIXEL_MAX)

    return {
        "x_train": inputs(x[train]), "y_train": torch.from_numpy(y[train].astype(np.int64)),
        "x_val": inputs(x[val]), "y_val": torch.from_numpy(y[val].astype(np.int64)),
    }


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    return float((model(x).argmax(dim=1) == y).float().mean())


def train(cfg: Config, d: dict[str, torch.Tensor], progress: Path) -> tuple[MLP, float]:
    """Fit the model, appending one progress line per epoch; returns it and its val accuracy."""
    model = MLP(cfg.hidden, cfg.depth, cfg.activation, cfg.dropout)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    order_gen = torch.Generator().manual_seed(cfg.seed)
    n = len(d["x_train"])
    val_acc = 0.0
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        total = 0.0
        for idx in torch.randperm(n, generator=order_gen).split(cfg.batch_size):
            loss = loss_fn(model(d["x_train"][idx]), d["y_train"][idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        val_acc = accuracy(model, d["x_val"], d["y_val"])
        line = {"step": epoch, "train_loss": round(total / n, 6), "val_accuracy": round(val_acc, 6)}
        with progress.open("a", encoding="utf-8") as f:  # reopened per line so a watcher sees it at once
            f.write(json.dumps(line) + "\n")
    return model, val_acc


def threads_from_env() -> int:
    """The sandbox sets OMP_NUM_THREADS to the CPUs it grants; default to 1 (fastest for a tiny MLP)."""
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "1")))
    except ValueError:
        return 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="directory holding train.npz")
    parser.add_argument("--out", required=True, type=Path, help="directory to write outputs into")
    parser.add_argument("--config", type=Path, default=Path(__file__).with_name("config.yaml"))
    args = parser.parse_args()
    try:
        cfg = load_config(args.config)
    except ValidationError as exc:
        problem = exc.errors()[0]
        sys.exit(f"train.py: bad config: {'.'.join(map(str, problem['loc']))}: {problem['msg']}")
    except (OSError, yaml.YAMLError) as exc:
        sys.exit(f"train.py: bad config: {exc}")

    torch.set_num_threads(threads_from_env())
    torch.manual_seed(cfg.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    progress = args.out / "progress.jsonl"
    progress.unlink(missing_ok=True)  # a rerun starts a fresh curve

    data = load_data(args.data, cfg)
    start = time.perf_counter()
    model, val_acc = train(cfg, data, progress)
    seconds = time.perf_counter() - start
    save_file(model.state_dict(), str(args.out / "model.safetensors"))

    print(f"val_accuracy: {val_acc:.4f}")
    print(f"accuracy: {val_acc:.4f}")  # self-reported estimate; the scorer measures the real one
    print(f"params: {model.num_params()}")
    print(f"train_seconds: {seconds:.2f}")


if __name__ == "__main__":
    main()
