"""Train the charlm transformer for a fixed number of steps. Candidates change this file,
model.py and config.yaml; prepare.py and score.py are the fixed evaluation.

Reads config.yaml, trains on {data}/train.npy for ``max_iters`` steps (the budget every
candidate gets, so that a better number means a better recipe, not a longer run), measures
bits per character on {data}/validation.npy, and writes into --out:
  model.safetensors   the trained weights (tensors only: progenitor counts them from the header)
  progress.jsonl      one JSON line per evaluation: {"step", "train_loss", "val_bpc"}
then prints a greppable summary of ``key: value`` lines. Same config, same numbers.

It never predicts the holdout: progenitor's scoring sandbox calls model.predict on it.

Usage: python train.py --data DATA_DIR --out OUT_DIR [--config config.yaml]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from model import GPT, model_config, read_config
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from torch.nn import functional as F


class Config(BaseModel):
    """What config.yaml must hold; the values and the reasons for them live in that file."""

    model_config = ConfigDict(extra="forbid", frozen=True)  # an unknown key is a typo, not a new knob

    n_layer: int = Field(ge=1)
    n_head: int = Field(ge=1)
    n_embd: int = Field(ge=8)
    block_size: int = Field(ge=8)
    dropout: float = Field(ge=0.0, lt=1.0)
    activation: Literal["gelu", "relu", "silu"]
    norm: Literal["layernorm", "rmsnorm"]
    lr: float = Field(gt=0.0)
    schedule: Literal["constant", "cosine"]
    warmup_iters: int = Field(ge=0)
    min_lr_ratio: float = Field(ge=0.0, le=1.0)
    batch_size: int = Field(ge=1)
    max_iters: int = Field(ge=1)
    weight_decay: float = Field(ge=0.0)
    grad_clip: float = Field(gt=0.0)
    eval_interval: int = Field(ge=1)
    eval_chars: int = Field(ge=1000)
    seed: int


def lr_at(cfg: Config, step: int) -> float:
    """Linear warm-up, then constant or cosine decay to ``min_lr_ratio * lr`` at the last step."""
    if step < cfg.warmup_iters:
        return cfg.lr * (step + 1) / cfg.warmup_iters
    if cfg.schedule == "constant":
        return cfg.lr
    done = (step - cfg.warmup_iters) / max(1, cfg.max_iters - cfg.warmup_iters)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(done, 1.0))))


def batch(tokens: torch.Tensor, cfg: Config, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    starts = torch.randint(len(tokens) - cfg.block_size - 1, (cfg.batch_size,), generator=gen)
    index = starts[:, None] + torch.arange(cfg.block_size)[None, :]
    return tokens[index], tokens[index + 1]


@torch.no_grad()
def bits_per_char(model: GPT, tokens: torch.Tensor, cfg: Config) -> float:
    """Mean bits per character over non-overlapping blocks of the first ``eval_chars`` characters."""
    model.eval()
    usable = min(len(tokens) - 1, cfg.eval_chars) // cfg.block_size * cfg.block_size
    x = tokens[:usable].view(-1, cfg.block_size)
    y = tokens[1:usable + 1].view(-1, cfg.block_size)
    total = sum(F.cross_entropy(model(xb).flatten(0, 1), yb.flatten(), reduction="sum").item()
                for xb, yb in zip(x.split(64), y.split(64)))
    model.train()
    return total / y.numel() / math.log(2)


def train(cfg: Config, train_tokens: torch.Tensor, val_tokens: torch.Tensor, progress: Path) -> tuple[GPT, float]:
    model = GPT(model_config(cfg.model_dump()))
    decay = [p for p in model.parameters() if p.dim() >= 2]  # matrices decay; norms and biases do not
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}],
                            lr=cfg.lr, betas=(0.9, 0.99))
    gen = torch.Generator().manual_seed(cfg.seed)
    model.train()
    for step in range(cfg.max_iters):
        for group in opt.param_groups:
            group["lr"] = lr_at(cfg, step)
        x, y = batch(train_tokens, cfg, gen)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        if (step + 1) % cfg.eval_interval == 0 or step + 1 == cfg.max_iters:
            line = {"step": step + 1, "train_loss": round(loss.item(), 4),
                    "val_bpc": round(bits_per_char(model, val_tokens, cfg), 4)}
            with progress.open("a", encoding="utf-8") as f:  # reopened per line so a watcher sees it at once
                f.write(json.dumps(line) + "\n")
    return model, bits_per_char(model, val_tokens, cfg)


def save(model: GPT, path: Path) -> None:
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in model.state_dict().items() if k != "head.weight"}  # tied to tok.weight
    save_file(state, str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="directory holding train.npy and validation.npy")
    parser.add_argument("--out", required=True, type=Path, help="directory to write outputs into")
    parser.add_argument("--config", type=Path, default=Path(__file__).with_name("config.yaml"))
    args = parser.parse_args()
    try:
        cfg = Config(**read_config(args.config))
    except (ValidationError, TypeError, OSError) as exc:
        sys.exit(f"train.py: bad config: {exc}")
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1") or 1)))
    torch.manual_seed(cfg.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    progress = args.out / "progress.jsonl"
    progress.unlink(missing_ok=True)  # a rerun starts a fresh curve
    train_tokens = torch.from_numpy(np.load(args.data / "train.npy").astype(np.int64))
    val_tokens = torch.from_numpy(np.load(args.data / "validation.npy").astype(np.int64))
    start = time.perf_counter()
    model, val_bpc = train(cfg, train_tokens, val_tokens, progress)
    seconds = time.perf_counter() - start
    save(model, args.out / "model.safetensors")
    print(f"val_bpc: {val_bpc:.4f}")  # its own estimate; the scorer measures the holdout
    print(f"params: {model.num_params()}")
    print(f"train_seconds: {seconds:.2f}")


if __name__ == "__main__":
    main()
