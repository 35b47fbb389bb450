"""The Optuna sampler of the search architect, chosen for small budgets on evidence
(``bench/search_small_budget.py``; the figures are in docs/search.md)."""

from __future__ import annotations

from typing import Any

__all__ = ["StartThen", "make_sampler"]


def make_sampler(seed: int, candidates: int) -> Any:
    """The sampler a run's study asks (``candidates`` proposals per generation).

    TPE from the first generation on: one finished trial, the human baseline the study is
    told first, is enough to start from. Waiting for ``max(K, 4)`` random draws first (as
    before) spent the first generation (two, with K=3 and a baseline outside the space) of
    a small budget on random guesses. Multivariate, to model knobs that act together (width
    and learning rate); the constant liar, so that the K proposals of one generation, asked
    before any of them is scored, do not all land on the same spot. ``candidates`` is taken
    for the bench's sake: this choice does not depend on it."""
    import optuna

    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=1, multivariate=True, constant_liar=True)


class StartThen:
    """One sampler for the first ``first`` trials after the baseline, another afterwards
    (e.g. an even Sobol spread, then TPE). Trial 0 is the baseline, told, never sampled."""

    def __new__(cls, start: Any, then: Any, first: int):
        import optuna

        class _StartThen(optuna.samplers.BaseSampler):
            def __init__(self) -> None:
                self.start, self.then, self.first = start, then, first

            def _pick(self, trial) -> Any:
                return self.start if trial.number <= self.first else self.then

            def infer_relative_search_space(self, study, trial):
                return self._pick(trial).infer_relative_search_space(study, trial)

            def sample_relative(self, study, trial, search_space):
                return self._pick(trial).sample_relative(study, trial, search_space)

            def sample_independent(self, study, trial, param_name, param_distribution):
                return self._pick(trial).sample_independent(study, trial, param_name, param_distribution)

            def before_trial(self, study, trial):
                self._pick(trial).before_trial(study, trial)

            def after_trial(self, study, trial, state, values):
                self._pick(trial).after_trial(study, trial, state, values)

            def reseed_rng(self) -> None:
                self.start.reseed_rng()
                self.then.reseed_rng()

        return _StartThen()
