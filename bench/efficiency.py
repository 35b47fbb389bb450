"""How busy a run keeps its training slots, measured on the digits demo and simulated at scale.

Runs the digits example (3 generations x 4 candidates, 2 slots, the local executor) once per
sandbox and search mode (``generations``, ``async``) and reads back from its ledger and events:

- **slot efficiency**: training CPU-seconds / (slots x the run's wall), issue 22's figure;
- **busy**: training wall-seconds / (slots x the run's wall), the share of slot-time a training
  held (CPU-seconds count only what the training computed: its sandbox's start and a core the
  driver's scorer shares are not in them);
- **wall / ideal**: the run's wall against the ideal, the sum of training seconds / slots;
- **ceiling**: the highest efficiency the machine allows when its cores are the slots: training
  CPU-seconds over those and the scoring sandboxes' (``evaluate: model`` runs each candidate's
  predict function on the same cores);
- the idle slot-seconds the run's summary reports.

Then it simulates the same run on 2, 8 and 64 slots for both search modes, with training
times drawn from the measured ones and the measured fixed costs (proposing, scoring,
preparing) kept as they were, proposing and committing a candidate costing the measured
generation's share per candidate: ``generations`` (K = slots candidates each, a barrier after
the last score) against ``async`` (a candidate proposed each time a slot frees, proposals one
at a time on the driver, which becomes the bottleneck when it cannot keep up with the slots).
Each simulated run trains ``GENERATIONS x slots`` candidates.

    PYTHONPATH=. python bench/efficiency.py [--sandbox process docker] [--mode generations async] [--seed 0]
        [--compare OLD_CHECKOUT] [--runs-dir DIR [--reuse]]
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

from pydantic import BaseModel

GENERATIONS = 3
CANDIDATES = 4
SLOTS = 2


class Measured(BaseModel):
    """One real run, read back from its ledger and events."""

    sandbox: str
    mode: str = "generations"
    slots: int
    wall: float
    cpu_seconds: float
    train_seconds: float
    idle_slot_seconds: float
    scoring_cpu_seconds: float = 0.0
    """CPU-seconds of the scoring sandboxes (``evaluate: model``: each candidate's predict function),
    which share the machine's cores with the trainings."""
    trainings: list[float]
    """Wall seconds of each training."""
    prepare: float
    """Run start to the first candidate's training (baseline and preparation included)."""
    propose: list[float]
    """Each generation: from the one before ending to its first training (proposing, committing)."""
    score_lag: list[float]
    """Each candidate: from its training's end to its score."""
    champions: list[str]
    """Each generation's promotion, by name (``g1/c2``), or ``-``."""

    @property
    def efficiency(self) -> float:
        return self.cpu_seconds / (self.slots * self.wall)

    @property
    def ceiling(self) -> float:
        """The highest efficiency the cores allow when they are the slots: training CPU over the
        training and scoring CPU the run needed (the driver's own work left out)."""
        return self.cpu_seconds / (self.cpu_seconds + self.scoring_cpu_seconds)

    @property
    def busy(self) -> float:
        return self.train_seconds / (self.slots * self.wall)

    @property
    def wall_over_ideal(self) -> float:
        return self.wall / (self.train_seconds / self.slots)


def run_demo(sandbox: str, seed: int, where: Path, tree: Optional[Path] = None, reuse: bool = False,
             mode: str = "generations") -> Path:
    """The digits demo in a fresh repo under ``where`` (with progenitor from ``tree``, else this
    one), in search mode ``mode``; returns its run directory (with ``reuse``, the one a run
    before left there)."""
    repo = where / f"digits-{sandbox}-{mode}{'-' + tree.name if tree else ''}"
    if reuse:
        (run,) = (repo / ".progenitor" / "runs").iterdir()
        return run
    cli = [sys.executable, "-m", "progenitor.cli"]
    # python -m puts the working directory first on the path: run from ``where``, never a checkout
    env = {**os.environ, "PYTHONPATH": str((tree or Path(__file__).resolve().parents[1]).resolve())}
    subprocess.run([*cli, "init", "--example", "digits", str(repo)], check=True, capture_output=True, env=env,
                   cwd=where)
    if mode != "generations":
        spec = repo / "progenitor.yaml"
        spec.write_text(spec.read_text() + f"\nsearch: {{mode: {mode}}}\n")
        subprocess.run(["git", "-C", str(repo), "commit", "-qam", f"search.mode: {mode}"], check=True)
    subprocess.run([*cli, "run", str(repo), "--generations", str(GENERATIONS), "--candidates", str(CANDIDATES),
                    "--sandbox", sandbox, "--executor", "local", "--parallel", str(SLOTS), "--seed", str(seed),
                    "--quiet"], check=True, env=env, cwd=where, stdout=subprocess.DEVNULL)
    (run,) = (repo / ".progenitor" / "runs").iterdir()
    return run


def measure(sandbox: str, run: Path, mode: str = "generations") -> Measured:
    ledger = json.loads((run / "ledger.json").read_text())
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines() if line.strip()]
    attempts = [a for c in ledger["candidates"].values() for a in c["attempts"]]
    starts = {(e["gen"], e["k"]): e["t"] for e in events if e["type"] == "train.start"}
    ends = {(e["gen"], e["k"]): e["t"] for e in events if e["type"] == "train.end"}
    scored = {key: (run / f"g{key[0]}" / f"c{key[1]}" / "score.json").stat().st_mtime for key in ends
              if (run / f"g{key[0]}" / f"c{key[1]}" / "score.json").exists()}
    t0 = next(e["t"] for e in events if e["type"] == "run.start")
    t_end = next(e["t"] for e in reversed(events) if e["type"] == "run.end")
    gen_ends = {e["gen"]: e["t"] for e in events if e["type"] == "generation.end"}
    candidates = [key for key in starts if key[0] > 0]
    first = {g: min(starts[key] for key in candidates if key[0] == g) for g in gen_ends
             if any(key[0] == g for key in candidates)}
    summary = json.loads((run / "run.json").read_text()).get("summary") or {}
    return Measured(
        sandbox=sandbox, mode=mode, slots=ledger.get("slots") or SLOTS, wall=t_end - t0,
        cpu_seconds=sum(a["cpu_seconds"] for a in attempts), train_seconds=sum(a["wall_seconds"] for a in attempts),
        idle_slot_seconds=summary.get("idle_slot_seconds") or 0.0,
        scoring_cpu_seconds=sum(v for f in run.glob("g*/c*/*score.json")
                                for k, v in (json.loads(f.read_text()).get("metrics") or {}).items()
                                if k.endswith("eval_cpu_seconds")),
        trainings=[a["wall_seconds"] for a in attempts], prepare=min(first.values()) - t0,
        # proposing: from a generation's end to the next one's first training (generations only:
        # in the asynchronous mode proposals overlap the trainings)
        propose=[first[g] - gen_ends[g - 1] for g in sorted(first) if g > 1 and g - 1 in gen_ends]
        if mode == "generations" else [],
        # the moment each score was written (the pool scores as a training ends; the score
        # event comes later, from the node that takes the generation's scores)
        score_lag=[scored[k] - ends[k] for k in candidates if k in scored and k in ends],
        # by name (two demo repos have different commits): who each generation promoted, "-" none
        champions=[f"g{e['gen']}/c{e['promoted']}" if e.get("promoted") is not None else "-"
                   for e in events if e["type"] == "generation.end"],
    )


# -- the simulation -----------------------------------------------------------------------------
def sim_generations(m: Measured, slots: int, rng: random.Random) -> tuple[float, float]:
    """(wall, training seconds) of GENERATIONS generations of ``slots`` candidates each."""
    wall, busy = m.prepare, 0.0
    propose = statistics.mean(m.propose or [0.0]) / CANDIDATES * slots  # proposing and committing K of them
    for g in range(GENERATIONS):
        free = [wall + (propose if g else 0.0)] * slots
        done = []
        for _ in range(slots):
            t = rng.choice(m.trainings)
            start = heapq.heappop(free)
            busy += t
            done.append(start + t + rng.choice(m.score_lag or [0.0]))
            heapq.heappush(free, start + t)
        wall = max(done)  # the barrier: the generation waits for its last score
    return wall, busy


def sim_async(m: Measured, slots: int, rng: random.Random) -> tuple[float, float]:
    """(wall, training seconds) of ``GENERATIONS x slots`` candidates, each proposed when a slot
    frees; the driver proposes one at a time (a proposal costs a generation's proposing / K)."""
    per_proposal = statistics.mean(m.propose or [0.0]) / CANDIDATES
    free = [m.prepare] * slots
    driver, busy, last = m.prepare, 0.0, m.prepare
    for _ in range(GENERATIONS * slots):
        slot_free = heapq.heappop(free)
        driver = max(driver, slot_free) + per_proposal
        t = rng.choice(m.trainings)
        busy += t
        heapq.heappush(free, driver + t)
        last = max(last, driver + t + rng.choice(m.score_lag or [0.0]))
    return last, busy


def simulate(m: Measured, seed: int, rounds: int = 200) -> list[tuple[int, str, float, float]]:
    """(slots, mode, efficiency, wall / ideal), each the mean over ``rounds`` draws."""
    rows = []
    for slots in (2, 8, 64):
        for mode, sim in (("generations", sim_generations), ("async", sim_async)):
            rng = random.Random(seed)
            eff, ratio = [], []
            for _ in range(rounds):
                wall, busy = sim(m, slots, rng)
                eff.append(busy / (slots * wall))
                ratio.append(wall / (busy / slots))
            rows.append((slots, mode, statistics.mean(eff), statistics.mean(ratio)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sandbox", nargs="+", default=["process"], choices=["process", "docker"])
    parser.add_argument("--mode", nargs="+", default=["generations", "async"], choices=["generations", "async"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compare", type=Path, help="Also run the process demo with progenitor from this checkout "
                        "(the code before the pool): its figures and whether it promotes the same champions.")
    parser.add_argument("--reuse", action="store_true", help="Read the runs a run before left in --runs-dir, run nothing.")
    parser.add_argument("--runs-dir", type=Path, help="Keep the demo repos here (default: a temporary directory).")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"digits demo {GENERATIONS}x{CANDIDATES}, {SLOTS} slots, local executor, seed {args.seed}")
    with tempfile.TemporaryDirectory() as tmp:
        where = args.runs_dir or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        measured = [measure(sb, run_demo(sb, args.seed, where, reuse=args.reuse, mode=mode), mode)
                    for sb in args.sandbox for mode in args.mode]
        before = measure("process", run_demo("process", args.seed, where, args.compare, args.reuse)) if args.compare else None
    print(f"\n{'sandbox':8} {'mode':12} {'wall s':>7} {'CPU-s':>7} {'efficiency':>10} {'busy':>6} {'wall/ideal':>10} "
          f"{'idle slot-s':>11} {'scoring CPU-s':>13} {'ceiling':>7}  champions")
    for m in measured:
        champions = " ".join(m.champions) if m.mode == "generations" else (
            f"{sum(c != '-' for c in m.champions)} promotions")
        print(f"{m.sandbox:8} {m.mode:12} {m.wall:7.1f} {m.cpu_seconds:7.1f} {m.efficiency:10.2f} {m.busy:6.2f} "
              f"{m.wall_over_ideal:10.2f} {m.idle_slot_seconds:11.1f} {m.scoring_cpu_seconds:13.1f} {m.ceiling:7.2f}  "
              f"{champions}")
    if before is not None:
        m = before
        print(f"{'before':8} {'generations':12} {m.wall:7.1f} {m.cpu_seconds:7.1f} {m.efficiency:10.2f} {m.busy:6.2f} "
              f"{m.wall_over_ideal:10.2f} {'':>11}  {' '.join(m.champions)}")
        now = next((x for x in measured if x.sandbox == "process" and x.mode == "generations"), None)
        if now is not None:
            print(f"process efficiency now / before: {now.efficiency / before.efficiency:.2f}; "
                  f"the same champions for the seed: {before.champions == now.champions}")
    generations = [x for x in measured if x.mode == "generations"]
    if not generations:
        return
    m = generations[0]
    print(f"\nsimulated from the {m.sandbox} run: {len(m.trainings)} trainings "
          f"(median {statistics.median(m.trainings):.1f} s), preparing {m.prepare:.1f} s, proposing "
          f"{statistics.mean(m.propose or [0]):.1f} s a generation, scoring lag {statistics.mean(m.score_lag or [0]):.2f} s")
    print(f"{'slots':>5} {'mode':12} {'efficiency':>10} {'wall/ideal':>10}")
    for slots, mode, eff, ratio in simulate(m, args.seed):
        print(f"{slots:5d} {mode:12} {eff:10.2f} {ratio:10.2f}")


if __name__ == "__main__":
    main()
