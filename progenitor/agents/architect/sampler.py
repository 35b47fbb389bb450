"""The Optuna sampler of the search architect, chosen for small budgets on evidence
(``bench/search_small_budget.py``; the figures are in docs/search.md)."""

from __future__ import annotations

from typing import Any

__all__ = ["make_sampler"]


def make_sampler(seed: int) -> Any:
    """The sampler a run's study asks.

    TPE from the first generation on: one finished trial, the human baseline the study is
    told first, is enough to start from. Waiting for ``max(K, 4)`` random draws first (as
    before) spent the first generation (two, with K=3 and a baseline outside the space) of
    a small budget on random guesses. Multivariate, to model knobs that act together (width
    and learning rate); the constant liar, so that the K proposals of one generation, asked
    before any of them is scored, do not all land on the same spot. The benchmark found it
    best at K=3 and K=4 alike, so it does not depend on K."""
    import optuna

    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=1, multivariate=True, constant_liar=True)
