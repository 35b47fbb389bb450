"""The digits model: a multi-layer perceptron from 64 pixels to 10 class logits.

Kept apart from train.py so that an architect can change the network without touching
the training loop, and the other way round.
"""

from __future__ import annotations

import torch
from torch import nn

N_INPUTS = 64  # 8x8 pixels
N_CLASSES = 10

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
