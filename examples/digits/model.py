"""The digits model: a multi-layer perceptron from 64 pixels to 10 class logits, and its
predict function.

Kept apart from train.py so that an architect can change the network without touching
the training loop, and the other way round. ``predict(inputs, artifacts)`` is the entry point
progenitor's scoring sandbox calls (``predict: model.py:predict`` in progenitor.yaml): images
in, class probabilities out, from config.yaml (in this tree) and the weights training saved
(``artifacts/model.safetensors``). It never sees a label.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn

N_INPUTS = 64  # 8x8 pixels
N_CLASSES = 10
PIXEL_MAX = 16.0  # the digits pixels are counts 0..16; scaling to 0..1 keeps early logits small

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU}


class MLP(nn.Module):
    """``depth`` hidden layers of ``hidden`` units, each: linear -> activation -> dropout."""

    def __init__(self, hidden: int, depth: int, activation: str, dropout: float) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
        if depth < 1 or hidden < 1:
            raise ValueError(f"depth and hidden must be at least 1, got depth={depth}, hidden={hidden}")
        layers: list[nn.Module] = []
        width = N_INPUTS
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), ACTIVATIONS[activation](), nn.Dropout(dropout)]
            width = hidden
        layers.append(nn.Linear(width, N_CLASSES))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (unnormalised): the loss applies log-softmax itself, more stably."""
        return self.net(x)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


@functools.lru_cache(maxsize=1)
def load(artifacts: str) -> MLP:
    """The trained model, built from this tree's config.yaml and the saved weights (once per process)."""
    from safetensors.torch import load_file

    with open(Path(__file__).with_name("config.yaml"), encoding="utf-8") as f:
        cfg = yaml.safe_load(f)
    model = MLP(cfg["hidden"], cfg["depth"], cfg["activation"], cfg["dropout"])
    model.load_state_dict(load_file(str(Path(artifacts) / "model.safetensors")))
    return model.eval()


@torch.no_grad()
def predict(inputs: np.ndarray, artifacts: str) -> np.ndarray:
    """Class probabilities (n, 10) for raw images (n, 64): the scoring sandbox's entry point."""
    model = load(str(artifacts))
    x = torch.from_numpy(np.asarray(inputs, dtype=np.float32)) / PIXEL_MAX
    return torch.softmax(model(x), dim=1).numpy()
