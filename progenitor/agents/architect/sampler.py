"""The Optuna samplers of the search architect, chosen for small budgets on evidence
(``bench/search_quality.py``; the figures are in docs/search.md)."""

from __future__ import annotations

from typing import Any

__all__ = ["SAMPLERS", "make_sampler"]

SAMPLERS = ("tpe", "cmaes")


def _tpe(seed: int) -> Any:
    """TPE from the first generation on: one finished trial, the human baseline the study is
    told first, is enough to start from (waiting for ``max(K, 4)`` random draws spent a small
    budget's first generation on guesses). Multivariate, to model knobs that act together (width
    and learning rate); the constant liar, so that the K proposals of one generation, asked
    before any of them is scored, do not all land on the same spot."""
    import optuna

    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=1, multivariate=True, constant_liar=True)


def make_sampler(seed: int, kind: str = "tpe") -> Any:
    """The sampler a run's study asks: ``tpe``, or ``cmaes`` (CMA-ES over the numeric knobs, from
    the centre of the space, categorical knobs by TPE). CMA-ES once started at the baseline's
    values: on the tabular bench that kept it near an under-trained baseline (test RMSE 61.01 /
    60.61 at 12 / 36 trainings against 59.99 / 59.85 from the centre; docs/search.md), and
    Optuna deprecates that start (``x0``) anyway."""
    import optuna

    if kind == "tpe":
        return _tpe(seed)
    if kind != "cmaes":
        raise ValueError(f"unknown sampler {kind!r}; one of {', '.join(SAMPLERS)}")
    try:
        import cmaes  # noqa: F401 - Optuna's CMA-ES sampler needs it, and says so only when asked
    except ImportError:
        from progenitor.errors import UserError

        raise UserError("search.sampler: cmaes needs the 'cmaes' package: pip install cmaes") from None
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.CmaEsSampler(seed=seed, with_margin=True, independent_sampler=_tpe(seed),
                                            warn_independent_sampling=False)
