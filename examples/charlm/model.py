"""The charlm model: a small decoder-only transformer over characters, and its predict function.

A GPT in the usual shape: token and position embeddings, ``n_layer`` blocks of causal
self-attention and an MLP, each behind a norm with a residual around it, a final norm and a
head tied to the token embedding. Kept apart from train.py so that an architect can change
the network (an activation, a norm, a new block) without touching the training loop.

``predict(inputs, artifacts)`` is the entry point progenitor's scoring sandbox calls
(``predict: model.py:predict`` in progenitor.yaml): token windows in, one row of logits per
position out. It rebuilds the model from config.yaml (in this tree) and the weights training
saved (``artifacts/model.safetensors``), and never sees a label.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn
from torch.nn import functional as F

VOCAB_SIZE = 98  # prepare.py's 97 characters and one id for every other character


@dataclass(frozen=True)
class GPTConfig:
    """The network's shape; config.yaml sets every field (train.py checks it)."""

    block_size: int = 64  # the context the model is trained on; longer inputs are read in overlapping blocks
    vocab_size: int = VOCAB_SIZE
    n_layer: int = 2  # two blocks already learn words and indentation; depth is the first thing to scale
    n_head: int = 4  # n_embd / n_head = 16 dimensions per head: enough for character-level attention
    n_embd: int = 64  # small on purpose: a 1-CPU minute of training is the budget
    dropout: float = 0.0  # a fixed, short budget underfits; dropout would only slow it down
    activation: str = "gelu"  # GPT-2's choice; relu and silu are one-word experiments
    norm: str = "layernorm"  # pre-norm blocks (GPT-2); rmsnorm drops the mean and the bias


class RMSNorm(nn.Module):
    """Scale by the root mean square: LayerNorm without centring or bias (cheaper, often as good)."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)


NORMS = {"layernorm": nn.LayerNorm, "rmsnorm": RMSNorm}
ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU}


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        if cfg.n_embd % cfg.n_head:
            raise ValueError(f"n_embd ({cfg.n_embd}) must be a multiple of n_head ({cfg.n_head})")
        self.n_head, self.dropout = cfg.n_head, cfg.dropout
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        # is_causal: position i attends to positions <= i only; the scorer's causality probe checks it.
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).contiguous().view(b, t, c))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.norm1, self.norm2 = NORMS[cfg.norm](cfg.n_embd), NORMS[cfg.norm](cfg.n_embd)
        self.attn = CausalSelfAttention(cfg)
        self.mlp = nn.Sequential(nn.Linear(cfg.n_embd, 4 * cfg.n_embd), ACTIVATIONS[cfg.activation](),
                                 nn.Linear(4 * cfg.n_embd, cfg.n_embd), nn.Dropout(cfg.dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        if cfg.norm not in NORMS or cfg.activation not in ACTIVATIONS:
            raise ValueError(f"norm must be one of {sorted(NORMS)} and activation one of {sorted(ACTIVATIONS)}")
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.pos = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.norm = NORMS[cfg.norm](cfg.n_embd)
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.head.weight = self.tok.weight  # tied: one table reads and writes characters
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2: residual projections scaled by depth
            if name.endswith("proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits (batch, time, vocab) for inputs of at most ``block_size`` tokens."""
        t = idx.shape[1]
        x = self.drop(self.tok(idx) + self.pos(torch.arange(t, device=idx.device)))
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))

    @torch.no_grad()
    def logits(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits for inputs of any length: beyond ``block_size``, each later position is read
        with at least half a block of context before it (overlapping blocks, still causal)."""
        t, size = idx.shape[1], self.cfg.block_size
        if t <= size:
            return self(idx)
        out = torch.empty(idx.shape[0], t, self.cfg.vocab_size)
        out[:, :size] = self(idx[:, :size])
        done, step = size, max(1, size // 2)
        while done < t:
            end = min(done + step, t)
            out[:, done:end] = self(idx[:, end - size:end])[:, done - end:]
            done = end
        return out

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def read_config(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def model_config(values: dict) -> GPTConfig:
    """The network's fields of config.yaml (it also holds the training knobs)."""
    return GPTConfig(**{k: values[k] for k in GPTConfig.__dataclass_fields__ if k in values})


@functools.lru_cache(maxsize=1)
def load(artifacts: str) -> GPT:
    """The trained model, built from this tree's config.yaml and the saved weights (once per process)."""
    from safetensors.torch import load_file

    model = GPT(model_config(read_config(Path(__file__).with_name("config.yaml"))))
    state = load_file(str(Path(artifacts) / "model.safetensors"))
    state["head.weight"] = state["tok.weight"]  # tied: saved once
    model.load_state_dict(state)
    return model.eval()


def predict(inputs: np.ndarray, artifacts: str) -> np.ndarray:
    """Logits (batch, time, vocab) for token windows (batch, time): the scoring sandbox's entry point."""
    model = load(str(artifacts))
    return model.logits(torch.from_numpy(np.asarray(inputs, dtype=np.int64))).numpy()
