"""Does progenitor's offline search find better models than the best optimisers driven directly?

At equal numbers of trainings (12 and 36: 3 and 9 generations of 4 candidates), on the bundled
examples trained with their own code (``bench/search_tasks.py``), over several seeds:

- **progenitor**: the loop's offline search (``bench/search_loop.py``: the real SearchArchitect,
  parent selection, checks, guards and paired test), with each parent policy (``champion``,
  ``archive``), its samplers, and the paired test on or off; and ``search.mode: async`` with one
  slot (each candidate a generation of one, every result told before the next ask);
- **Optuna driven directly**, one trial at a time (so with more information per trial than a
  generation of 4 has): TPE with Optuna's defaults; TPE with progenitor's start-up (told the
  human baseline first, TPE from the next trial, multivariate, constant liar); CMA-ES with
  Optuna's defaults; random search. Each picks its best holdout trial (the baseline included
  when it was told it) among those within the task's absolute guards (a size limit).

For each it prints the median and interquartile range of the final pick's holdout figure and of
its test-split figure (never used to choose), a 95% bootstrap interval of that test median (how
far the seeds alone move it, each row on its own), how often the pick beats the human baseline on the test split, how often
progenitor's search promoted anything, and (with 20 seeds or more) how often the row would pass
issue 21's first check in a draw of 10 of the seeds: a test median at least as good as every
direct optimiser's and better than one's.

    PYTHONPATH=. python bench/search_quality.py [--tasks tabular digits] [--repo PATH ...] [--seeds 10]
                                                [--workers 2] [--cache DIR] [--markdown FILE]

``--repo`` benches a task repository of one's own (``bench/search_tasks.py``'s ``RepoTask``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, Optional

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core per worker: the workers are the parallelism
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.search_loop import Pick, simulate  # noqa: E402
from bench.search_tasks import TASKS, Task, load_task  # noqa: E402

BUDGETS = (12, 36)
K = 4


# -- Optuna driven directly ----------------------------------------------------------------------
def _distributions(task: Task) -> dict:
    from progenitor.agents.architect.search import _distribution

    return {name: _distribution(p) for name, p in task.spec.search_space.params.items()}


def _within_guards(task: Task, metrics: dict[str, float]) -> bool:
    """A user's own limits: the task's absolute guard bounds (a size budget), not its relative ones."""
    for g in task.spec.guards:
        value = metrics.get(g.metric)
        if value is None or (g.min is not None and value < g.min) or (g.max is not None and value > g.max):
            return False
    return True


def direct(task: Task, seed: int, kind: str) -> dict[int, Pick]:
    """Optuna's sampler ``kind`` asked one trial at a time; the best holdout pick after each budget."""
    import optuna

    from progenitor.agents.architect.sampler import make_sampler

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore")
    spec, metric = task.spec, task.spec.objective.metric
    samplers: dict[str, Callable[[], Any]] = {
        "TPE, Optuna's defaults": lambda: optuna.samplers.TPESampler(seed=seed),
        "TPE, progenitor's start-up": lambda: make_sampler(seed, "tpe"),
        "CMA-ES, Optuna's defaults": lambda: optuna.samplers.CmaEsSampler(seed=seed),
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
    }
    dists = _distributions(task)
    study = optuna.create_study(direction=spec.objective.goal, sampler=samplers[kind]())
    base = task.evaluate(task.baseline)
    told = kind == "TPE, progenitor's start-up"
    tried = [(base.metrics[metric], base.test, False)] if told else []
    if told:
        study.add_trial(optuna.trial.create_trial(params=task.baseline, distributions=dists, value=base.metrics[metric]))
    sign = 1 if spec.objective.goal == "maximize" else -1
    picks = {}
    for n in range(1, max(BUDGETS) + 1):
        trial = study.ask(dists)
        result = task.evaluate(trial.params)
        if metric not in result.metrics:  # the training or its scoring failed
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, result.metrics[metric])
            if _within_guards(task, result.metrics):
                tried.append((result.metrics[metric], result.test, True))
        if n in BUDGETS:  # nothing trained yet: the human baseline is what the search leaves
            best = max(tried, key=lambda t: sign * t[0]) if tried else (base.metrics[metric], base.test, False)
            picks[n] = Pick(holdout=best[0], test=best[1], promoted=best[2])
    return picks


class BenchError(Exception):
    """A search that cannot go on; the bench ends with its one sentence and exit code 2 (the
    searches finished before it stay saved in ``--cache``)."""


# -- the methods compared ------------------------------------------------------------------------
def _progenitor(search: dict, significance: Any = "spec", slots: int = 0) -> Callable[[Task, int], dict[int, Pick]]:
    """The loop's search; ``slots=1``: the async mode with one slot, i.e. generations of one
    candidate (each decided against the champion before the next is proposed)."""
    per = 1 if slots == 1 else K
    return lambda task, seed: simulate(task, seed, generations=max(BUDGETS) // per, candidates=per, search=search,
                                       significance=significance, record=BUDGETS, baseline_overlaps=slots == 1)


CHAMPION_TPE = {"parents": "champion", "sampler": "tpe", "local": 0.0}
METHODS: dict[str, Callable[[Task, int], dict[int, Pick]]] = {
    "progenitor: champion parents, TPE": _progenitor(CHAMPION_TPE, significance=None),
    "progenitor: champion parents, TPE, paired test 0.05": _progenitor(CHAMPION_TPE, significance=0.05),
    "progenitor: champion parents, TPE, paired test 0.2": _progenitor(CHAMPION_TPE, significance=0.2),
    "progenitor: champion parents, TPE, paired test 0.8": _progenitor(CHAMPION_TPE, significance=0.8),
    "progenitor: champion parents, TPE + 1 local step of 4": _progenitor(
        {**CHAMPION_TPE, "local": 0.25}, significance=None),
    "progenitor: archive parents, TPE + 2 local steps of 4": _progenitor(
        {"parents": "archive", "sampler": "tpe", "local": 0.5}, significance=None),
    "progenitor: champion parents, CMA-ES": _progenitor({**CHAMPION_TPE, "sampler": "cmaes"}, significance=None),
    "progenitor: async, 1 slot, champion parents, TPE": _progenitor(CHAMPION_TPE, significance=None, slots=1),
    **{f"Optuna {kind}": (lambda kind: lambda task, seed: direct(task, seed, kind))(kind)
       for kind in ("TPE, Optuna's defaults", "TPE, progenitor's start-up", "CMA-ES, Optuna's defaults", "random")},
}
"""The searches compared. A progenitor row without "paired test" promotes on the holdout figure
alone (``objective.significance: null``); with it, the gain must hold in the paired test over the
holdout examples at that level (divided by the candidates ranked)."""


def _job(args: tuple) -> tuple[tuple, dict]:
    task_name, method, seed, cache = args
    task = load_task(task_name, Path(cache) if cache else None)
    try:
        base = task.evaluate(task.baseline)
        if task.spec.objective.metric not in base.metrics:  # it trained in the main process: a timeout here
            raise BenchError(f"bench: {task_name}: the baseline's training failed in a worker: {base.failure}")
        picks = METHODS[method](task, seed)
    finally:
        task.close()
    return args, {n: p.model_dump() for n, p in picks.items()}


# -- the report ----------------------------------------------------------------------------------
def _quartiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else [values[0]] * 3
    return q[0], statistics.median(values), q[2]


def median_interval(values: list[float], draws: int = 4000, seed: int = 0) -> tuple[float, float]:
    """A 95% percentile-bootstrap interval of the median over the seeds."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    medians = np.median(v[np.random.default_rng(seed).integers(0, len(v), size=(draws, len(v)))], axis=1)
    low, high = np.percentile(medians, [2.5, 97.5])
    return float(low), float(high)


DRAW = 10
"""Seeds per draw in ``check_draws``: the number issue 21's first check is measured over."""


def check_draws(rows: dict[str, list[dict]], goal: str, draws: int = 5000, seed: int = 0) -> dict[str, float]:
    """For each row, the share of draws of ``DRAW`` of the seeds (the same seeds for every row)
    in which its test median is at least as good as every direct optimiser's and better than at
    least one: issue 21's first check, as often as the seeds alone let a row pass it. A direct
    optimiser's row is held to the other direct optimisers. Empty with fewer than 2 x ``DRAW`` seeds."""
    import numpy as np

    direct_rows = [m for m in rows if m.startswith("Optuna")]
    seeds = min(len(v) for v in rows.values())
    if seeds < 2 * DRAW or len(direct_rows) < 2:
        return {}
    sign = 1.0 if goal == "maximize" else -1.0
    test = {m: sign * np.array([p["test"] for p in v[:seeds]]) for m, v in rows.items()}  # higher is better
    rng = np.random.default_rng(seed)
    passed = dict.fromkeys(rows, 0)
    for _ in range(draws):
        idx = rng.choice(seeds, DRAW, replace=False)
        medians = {m: float(np.median(v[idx])) for m, v in test.items()}
        for m in rows:
            rivals = [medians[d] for d in direct_rows if d != m]
            passed[m] += medians[m] >= max(rivals) and medians[m] > min(rivals)
    return {m: n / draws for m, n in passed.items()}


def table(task: Task, budget: int, rows: dict[str, list[dict]]) -> list[str]:
    """Markdown rows for one task and budget."""
    spec = task.spec
    base = task.evaluate(task.baseline)
    sign = 1 if spec.objective.goal == "maximize" else -1
    metric = spec.objective.metric
    out = [f"**{task.name}, {budget} trainings** ({metric}, {'higher' if sign > 0 else 'lower'} is better; "
           f"baseline {base.metrics[metric]:.4g} holdout, {base.test:.4g} test)", "",
           "| search | holdout: median [IQR] | test: median [IQR] | test median: 95% interval | "
           "beats the baseline on test | not the baseline | passes the check |",
           "|---|---|---|---|---|---|---|"]
    passes = check_draws(rows, spec.objective.goal)
    for method, picks in rows.items():
        h = _quartiles([p["holdout"] for p in picks])
        t = _quartiles([p["test"] for p in picks])
        wins = sum(sign * (p["test"] - base.test) > 0 for p in picks)
        moved = sum(p["promoted"] for p in picks)
        ci = median_interval([p["test"] for p in picks])
        out.append(f"| {method} | {h[1]:.4g} [{h[0]:.4g}, {h[2]:.4g}] | {t[1]:.4g} [{t[0]:.4g}, {t[2]:.4g}] | "
                   f"{ci[0]:.4g} to {ci[1]:.4g} | {wins}/{len(picks)} | {moved}/{len(picks)} | "
                   f"{f'{passes[method]:.0%}' if method in passes else '-'} |")
    return out + (["", f"(passes the check: the share of draws of {DRAW} of these seeds in which the row's test median "
                   "is at least as good as every direct optimiser's and better than one.)", ""] if passes else [""])


def report(results: dict, tasks: list[str], seeds: int, cache: Optional[str]) -> list[str]:
    """The tables, over the first seeds that every method has finished (all ``seeds`` when the run did)."""
    lines = []
    for name in tasks:
        done = 0
        while done < seeds and all((name, m, done) in results for m in METHODS):
            done += 1
        if done < seeds:
            lines += [f"({name}: every method finished {done} of {seeds} seeds; the tables below are over those.)", ""]
        if not done:
            continue
        task = load_task(name, Path(cache) if cache else None)
        for budget in BUDGETS:
            rows = {m: [results[(name, m, s)][budget] for s in range(done)] for m in METHODS}
            lines += table(task, budget, rows)
        task.close()
    return lines


def _saved(cache: Optional[str]) -> dict:
    """The searches a run of the bench with this cache finished before (``results.json``)."""
    path = Path(cache, "results.json") if cache else None
    if path is None or not path.exists():
        return {}
    saved = json.loads(path.read_text())
    return {tuple(k.split("|")[:2]) + (int(k.split("|")[2]),): {int(n): p for n, p in v.items()} for k, v in saved.items()}


def _save(cache: Optional[str], results: dict) -> None:
    if cache:
        path = Path(cache, "results.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"|".join(map(str, k)): v for k, v in results.items()}))


def _refuse(message: str) -> None:
    """End the bench with ``message`` on one line (a parser's several lines joined) and exit code 2."""
    parts = [line.strip() for line in message.splitlines() if line.strip().strip("^")]
    print("; ".join(parts), file=sys.stderr)
    raise SystemExit(2)


def _repo_task(repo: Path, cache: Optional[str]) -> str:
    """A task repository's name for the jobs (its path), after one training of its baseline:
    a repository the bench cannot train ends the bench with one sentence and exit code 2."""
    from progenitor.errors import UserError

    name = str(repo.resolve())
    try:
        task = load_task(name, Path(cache) if cache else None)
        try:
            base = task.evaluate(task.baseline)
        finally:
            task.close()
    except (UserError, OSError) as exc:
        _refuse(f"bench: {repo}: {exc}")
    if task.spec.objective.metric not in base.metrics:
        _refuse(f"bench: {repo}: the baseline's training or scoring failed: {base.failure}")
    print(f"{task.name}: baseline {task.spec.objective.metric} {base.metrics[task.spec.objective.metric]:.4g} holdout, "
          f"{base.test:.4g} test", flush=True)
    return name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS),
                        help="Bundled tasks (all of them when neither this nor --repo is given).")
    parser.add_argument("--repo", nargs="+", type=Path, default=[],
                        help="Task repositories of one's own, trained and scored by their own commands, no sandbox "
                             "(predictions scored, a scorer.test needed).")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--methods", nargs="*", help="Only these methods (names as printed).")
    parser.add_argument("--cache", help="Directory that keeps every training's result and every finished search across runs of the bench "
                             "(a fresh one after a change to the search).")
    parser.add_argument("--markdown", type=Path, help="Also write the tables to this file.")
    parser.add_argument("--report", action="store_true",
                        help="Run nothing: the tables of the searches saved in --cache (the seeds all methods finished).")
    args = parser.parse_args()
    args.tasks = list(args.tasks or ([] if args.repo else TASKS)) + [_repo_task(r, args.cache) for r in args.repo]
    if args.methods:
        for name in list(METHODS):
            if name not in args.methods:
                del METHODS[name]
    # A search finished by an earlier run with the same cache is not run again: the bench may be
    # stopped and started, and each search is saved (``results.json``) as it finishes.
    results = _saved(args.cache)
    if args.report:
        print("\n".join(report(results, args.tasks, args.seeds, args.cache)))
        return
    jobs = [(t, m, s, args.cache) for t in args.tasks for s in range(args.seeds) for m in METHODS
            if (t, m, s) not in results]
    began = time.monotonic()
    try:
        with ProcessPoolExecutor(args.workers) as pool:
            for key, picks in pool.map(_job, jobs, chunksize=1):
                results[key[:3]] = {int(n): p for n, p in picks.items()}
                _save(args.cache, results)
    except BenchError as exc:
        _refuse(str(exc))
    lines = report(results, args.tasks, args.seeds, args.cache)
    lines.append(f"{len(jobs)} searches of {max(BUDGETS)} trainings each run now ({args.seeds} seeds, the rest "
                 f"saved before), in {time.monotonic() - began:.0f} s on {args.workers} workers.")
    print("\n".join(lines))
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
