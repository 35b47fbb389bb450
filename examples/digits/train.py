"""Train the digits MLP and predict the holdout. This is the file (with model.py and
config.yaml) that candidates change; prepare.py and score.py are the fixed evaluation.

Reads config.yaml, trains on {data}/train.npz minus a validation split it carves for
itself, and writes into --out:
  progress.jsonl    one JSON line per epoch: {"step", "train_loss", "val_accuracy"}
  predictions.npy   float32 (n, 10) class probabilities on {data}/holdout_inputs.npy
  model.pt          the trained state_dict (tensors only)
then prints a greppable summary of ``key: value`` lines. Same config, same numbers.

Usage: python train.py --data DATA_DIR --out OUT_DIR [--config config.yaml]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn

from model import MLP

PIXEL_MAX = 16.0  # the digits pixels are counts 0..16; scaling to 0..1 keeps early logits small


@dataclass(frozen=True)
class Config:
    """What config.yaml must hold; the values and the reasons for them live in that file."""

    hidden: int  # units per hidden layer
    depth: int  # number of hidden layers
    activation: str  # relu, gelu, tanh or silu
    dropout: float  # drop probability after each hidden layer, during training only
    lr: float  # AdamW learning rate, constant over training
    epochs: int  # full passes over the training split
    batch_size: int  # examples per optimiser step
    weight_decay: float  # AdamW's decoupled weight decay
    val_fraction: float  # share of train.npz held back to estimate accuracy
    seed: int  # seeds the validation split, the initial weights and the batch order


def load_config(path: Path) -> Config:
    """Read config.yaml; a missing, unknown or mistyped key is a one-sentence error."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ValueError(f"{path} must be a mapping of key: value")
    fields = {f.name: f.type for f in dataclasses.fields(Config)}
    unknown = sorted(set(raw) - set(fields))
    missing = sorted(set(fields) - set(raw))
    if unknown or missing:
        raise ValueError(f"{path}: unknown keys {unknown}, missing keys {missing}")
    casts = {"int": int, "float": float, "str": str}
    values = {}
    for name, kind in fields.items():
        value = raw[name]
        if kind == "int" and isinstance(value, float) and value.is_integer():
            value = int(value)  # a search tool may write 64.0
        if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, casts[kind]) or isinstance(value, bool):
            raise ValueError(f"{path}: {name} must be {kind}, got {value!r}")
        values[name] = value
    cfg = Config(**values)
    if not (0.0 <= cfg.dropout < 1.0 and 0.0 < cfg.val_fraction < 1.0):
        raise ValueError(f"{path}: dropout must be in [0, 1) and val_fraction in (0, 1)")
    if min(cfg.epochs, cfg.batch_size, cfg.hidden, cfg.depth) < 1 or cfg.lr <= 0 or cfg.weight_decay < 0:
        raise ValueError(f"{path}: epochs, batch_size, hidden, depth and lr must be positive")
    return cfg


def load_data(data: Path, cfg: Config) -> dict[str, torch.Tensor]:
    """Train/validation tensors carved from train.npz, plus the holdout inputs."""
    with np.load(data / "train.npz", allow_pickle=False) as split:
        x, y = split["x"], split["y"]
    holdout = np.load(data / "holdout_inputs.npy", allow_pickle=False)
    order = np.random.default_rng(cfg.seed).permutation(len(x))
    n_val = int(round(len(x) * cfg.val_fraction))
    val, train = order[:n_val], order[n_val:]

    def inputs(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a.astype(np.float32) / PIXEL_MAX)

    return {
        "x_train": inputs(x[train]), "y_train": torch.from_numpy(y[train].astype(np.int64)),
        "x_val": inputs(x[val]), "y_val": torch.from_numpy(y[val].astype(np.int64)),
        "x_holdout": inputs(holdout),
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


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    model.eval()
    return torch.softmax(model(x), dim=1).numpy().astype(np.float32)


def threads_from_env() -> int:
    """The sandbox sets OMP_NUM_THREADS to the CPUs it grants; default to 1 (fastest for a tiny MLP)."""
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "1")))
    except ValueError:
        return 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="directory holding train.npz and holdout_inputs.npy")
    parser.add_argument("--out", required=True, type=Path, help="directory to write outputs into")
    parser.add_argument("--config", type=Path, default=Path(__file__).with_name("config.yaml"))
    args = parser.parse_args()
    try:
        cfg = load_config(args.config)
    except (OSError, ValueError, yaml.YAMLError) as exc:
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
    np.save(args.out / "predictions.npy", predict(model, data["x_holdout"]))
    torch.save(model.state_dict(), args.out / "model.pt")

    print(f"val_accuracy: {val_acc:.4f}")
    print(f"accuracy: {val_acc:.4f}")  # self-reported estimate; the scorer measures the real one
    print(f"params: {model.num_params()}")
    print(f"train_seconds: {seconds:.2f}")


if __name__ == "__main__":
    main()
