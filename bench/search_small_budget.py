"""Which Optuna sampler finds the best model in a small budget, the way progenitor searches.

progenitor's search architect tells the study the human baseline first (when its values lie
in the space), then asks K proposals per generation and tells their scores before asking
the next K. This bench does exactly that with real models trained in-process (no sandbox,
no Ray: the samplers are what is measured), on two tasks:

- classification: scikit-learn's MLPClassifier on the 8x8 digits (holdout accuracy, maximised);
- regression: an MLPRegressor on scikit-learn's diabetes data (holdout RMSE, minimised);

at 12 trainings with K=3 (4 generations) and 24 trainings with K=4 (6 generations), over
several seeds. For each sampler it prints the mean and spread of the best score, its gain
over the baseline, its gap to the best score any search of the run found on the task, that
gap relative to Optuna's random sampler's in the same run (a ratio: 1.00 = as good as
random, lower is better), and in how many seeds it beat random.

    PYTHONPATH=. python bench/search_small_budget.py [--seeds 8] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core per worker: the workers are the parallelism

SETTINGS = [(12, 3), (24, 4)]
"""(trainings, candidates per generation)."""


# -- the tasks ------------------------------------------------------------------------------
def _digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    return train_test_split(x / 16.0, y, test_size=0.3, random_state=0, stratify=y)


def _diabetes():
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split

    x, y = load_diabetes(return_X_y=True)
    return train_test_split(x, y, test_size=0.3, random_state=0)


TASKS: dict[str, dict[str, Any]] = {
    "digits MLP (accuracy)": {
        "data": _digits, "direction": "maximize",
        "space": {"hidden": ("int", 8, 256, True), "alpha": ("float", 1e-6, 1e-1, True),
                  "lr": ("float", 1e-4, 3e-2, True), "epochs": ("int", 10, 80, False),
                  "activation": ("cat", ["relu", "tanh", "logistic"]), "batch_size": ("cat", [16, 32, 64, 128])},
        # Sensible, quick and under-trained, like the digits example's baseline.
        "baseline": {"hidden": 32, "alpha": 1e-4, "lr": 1e-3, "epochs": 15, "activation": "relu", "batch_size": 64},
    },
    "diabetes MLP (RMSE)": {
        "data": _diabetes, "direction": "minimize",
        "space": {"hidden": ("int", 4, 128, True), "alpha": ("float", 1e-5, 10.0, True),
                  "lr": ("float", 1e-4, 3e-2, True), "epochs": ("int", 50, 500, False),
                  "activation": ("cat", ["relu", "tanh", "logistic"]), "batch_size": ("cat", [16, 32, 64])},
        "baseline": {"hidden": 16, "alpha": 1e-4, "lr": 1e-3, "epochs": 200, "activation": "relu", "batch_size": 32},
    },
}

_DATA: dict[str, Any] = {}


def train(task: str, params: dict[str, Any]) -> float:
    """One training, seeded: the same values give the same score."""
    import numpy as np
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if task not in _DATA:
        _DATA[task] = TASKS[task]["data"]()
    x_train, x_test, y_train, y_test = _DATA[task]
    common = dict(hidden_layer_sizes=(params["hidden"],), alpha=params["alpha"], learning_rate_init=params["lr"],
                  max_iter=params["epochs"], activation=params["activation"], batch_size=params["batch_size"],
                  random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if TASKS[task]["direction"] == "maximize":
            model = MLPClassifier(**common).fit(x_train, y_train)
            return float(model.score(x_test, y_test))
        model = TransformedTargetRegressor(make_pipeline(StandardScaler(), MLPRegressor(**common)),
                                           transformer=StandardScaler()).fit(x_train, y_train)
        return float(np.sqrt(((model.predict(x_test) - y_test) ** 2).mean()))


def distributions(task: str) -> dict:
    import optuna.distributions as d

    out = {}
    for name, spec in TASKS[task]["space"].items():
        if spec[0] == "cat":
            out[name] = d.CategoricalDistribution(spec[1])
        elif spec[0] == "int":
            out[name] = d.IntDistribution(spec[1], spec[2], log=spec[3])
        else:
            out[name] = d.FloatDistribution(spec[1], spec[2], log=spec[3])
    return out


# -- the samplers ---------------------------------------------------------------------------
def _before(seed: int, k: int):
    """progenitor's setup before this bench: TPE after max(K, 4) finished trials."""
    import optuna

    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(k, 4), multivariate=True, constant_liar=True)


def _now(seed: int, k: int):
    """What the search architect uses now (whatever that is: read from the package)."""
    from progenitor.agents.architect.sampler import make_sampler

    return make_sampler(seed)


def _random(seed: int, k: int):
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def _tpe_defaults(seed: int, k: int):
    import optuna

    return optuna.samplers.TPESampler(seed=seed)


def _tpe_from_the_baseline(seed: int, k: int):
    """TPE from the first generation on: the baseline is its first finished trial."""
    import optuna

    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=1, multivariate=True, constant_liar=True)


def _gp(seed: int, k: int):
    """Gaussian-process BO (needs torch) after one generation of random draws."""
    import optuna

    return optuna.samplers.GPSampler(seed=seed, n_startup_trials=k + 1)


class StartThen:
    """(Bench only.) One sampler for the first ``first`` trials after the baseline, another afterwards
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


def _sobol_then_tpe(seed: int, k: int):
    """A scrambled Sobol first generation (spread evenly), then TPE."""
    import optuna

    return StartThen(optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=seed),
                     optuna.samplers.TPESampler(seed=seed, n_startup_trials=1, multivariate=True, constant_liar=True),
                     first=k)


SAMPLERS: dict[str, Callable] = {
    "random (Optuna)": _random,
    "progenitor before (TPE, max(K,4) startup)": _before,
    "TPE, Optuna defaults": _tpe_defaults,
    "TPE from the baseline (1 startup)": _tpe_from_the_baseline,
    "Sobol generation, then TPE": _sobol_then_tpe,
    "GP, one random generation": _gp,
    "progenitor now": _now,
}


def search(task: str, sampler_name: str, seed: int, budget: int, k: int) -> tuple[float, float]:
    """(baseline score, best score found in ``budget`` trainings), searched as progenitor does."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore")  # experimental-feature warnings of GP and QMC
    info = TASKS[task]
    dists = distributions(task)
    study = optuna.create_study(direction=info["direction"], sampler=SAMPLERS[sampler_name](seed, k))
    baseline = train(task, info["baseline"])
    study.add_trial(optuna.trial.create_trial(params=info["baseline"], distributions=dists, value=baseline))
    best = baseline
    better = max if info["direction"] == "maximize" else min
    for _ in range(budget // k):
        trials = [study.ask(dists) for _ in range(k)]
        for trial in trials:
            value = train(task, trial.params)
            study.tell(trial, value)
            best = better(best, value)
    return baseline, best


def _job(args: tuple) -> tuple[tuple, tuple[float, float]]:
    return args, search(*args)


def report(results: dict, seeds: int) -> dict[str, list[float]]:
    """Print one table per task and setting; returns each sampler's gap/random ratios."""
    ratios: dict[str, list[float]] = {name: [] for name in SAMPLERS}
    for task, info in TASKS.items():
        sign = 1 if info["direction"] == "maximize" else -1
        # The best score any search of this run found on the task: how far each falls short of it.
        known = max((sign * best for (t, *_), (_, best) in results.items() if t == task))
        for budget, k in SETTINGS:
            rows = {name: [results[(task, name, s, budget, k)] for s in range(seeds)] for name in SAMPLERS}
            baseline = rows["random (Optuna)"][0][0]
            randoms = [b for _, b in rows["random (Optuna)"]]
            random_gap = statistics.mean(known - sign * b for b in randoms)
            print(f"\n{task}, {budget} trainings, K={k} ({budget // k} generations), {seeds} seeds; "
                  f"baseline {baseline:.4f}, best known {sign * known:.4f}")
            print(f"  {'sampler':<44} {'best: mean':>10} {'sd':>7} {'gain':>8} {'gap':>7} {'gap/random':>10} "
                  f"{'beats random':>12}")
            for name, pairs in rows.items():
                bests = [b for _, b in pairs]
                gain = statistics.mean(sign * (b - baseline) for b in bests)
                gap = statistics.mean(known - sign * b for b in bests)
                ratio = gap / random_gap if random_gap else float("nan")
                ratios[name].append(ratio)
                wins = sum(sign * (b - r) > 0 for b, r in zip(bests, randoms))
                print(f"  {name:<44} {statistics.mean(bests):>10.4f} {statistics.stdev(bests):>7.4f} "
                      f"{gain:>+8.4f} {gap:>7.4f} {ratio:>10.2f} {wins:>7}/{seeds}")
    print("\nmean gap/random over the four settings (lower is better; random = 1.00):")
    for name, values in sorted(ratios.items(), key=lambda kv: statistics.mean(kv[1])):
        print(f"  {name:<44} {statistics.mean(values):.2f}   ({', '.join(f'{v:.2f}' for v in values)})")
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--only", nargs="*", help="Run only these samplers (names as printed), random always.")
    args = parser.parse_args()
    if args.only:
        for name in list(SAMPLERS):
            if name != "random (Optuna)" and name not in args.only:
                del SAMPLERS[name]
    jobs = [(task, name, seed, budget, k) for task in TASKS for name in SAMPLERS for seed in range(args.seeds)
            for budget, k in SETTINGS]
    began = time.monotonic()
    with ProcessPoolExecutor(args.workers) as pool:
        results = dict(pool.map(_job, jobs, chunksize=4))
    print(f"{len(jobs)} searches, {sum(b for *_, b, _ in jobs)} trainings, in {time.monotonic() - began:.0f} s")
    report(results, args.seeds)


if __name__ == "__main__":
    main()
