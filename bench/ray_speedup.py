"""A generation of K CPU-bound candidates through Ray on K CPU slots, against the same K run
one after another (the baseline: the local executor with one slot), in one run.

Each candidate is pure Python arithmetic for about ``--seconds`` in the process sandbox with
``cpus=1``. Ray is started and warmed up (one task per slot, so every worker process exists)
before the clock starts: the figure is the generation's wall time, not Ray's start-up.
Ray runs its workers at a lower priority (nice 15); the baseline runs at the same niceness,
so that other load on the machine weighs on both sides alike.

    python bench/ray_speedup.py [--k 2] [--seconds 4] [--rounds 3] [--min-speedup 1.8]

The machine may be shared: the load average is printed, and the verdict is the median of
a few rounds, each round timing both sides back to back.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from progenitor.compute.base import TrainJob, tree_archive
from progenitor.compute.local import LocalExecutor
from progenitor.compute.ray_executor import RayExecutor
from progenitor.sandbox.base import Limits

# Counts to ``n`` doing a little arithmetic each step: one core, no numpy, no threads.
BURN = """
import sys

def burn(n):
    total = 0
    for i in range(n):
        total = (total + i * i) % 1000003
    return total

print("total", burn(int(sys.argv[1])))
"""


def calibrate(seconds: float) -> int:
    """How many loop steps take about ``seconds`` of CPU on one core (CPU time, not wall time,
    so that other load on the machine does not shrink the candidates)."""
    steps, started = 0, time.process_time()
    total = 0
    while time.process_time() - started < 0.5:
        for i in range(steps, steps + 100_000):
            total = (total + i * i) % 1000003
        steps += 100_000
    return int(steps * seconds / (time.process_time() - started))


def jobs(k: int, steps: int, tag: str, command: str = "") -> list[TrainJob]:
    tree = tree_archive({"burn.py": BURN})
    return [
        TrainJob(key=f"bench/{tag}/c{i}", command=command or f"{sys.executable} burn.py {steps}", tree_archive=tree,
                 limits=Limits(cpus=1, wall_time=600), backend="process")
        for i in range(k)
    ]


def timed(executor, batch: list[TrainJob]) -> tuple[float, list]:
    """Wall seconds of the whole batch, and its results."""
    started = time.perf_counter()
    results = list(executor.run(batch))
    wall = time.perf_counter() - started
    failed = [r for r in results if not r.sandbox.ok]
    if failed:
        sys.exit(f"{failed[0].key} failed: {failed[0].sandbox.reason}\n{failed[0].sandbox.stderr[-2000:]}")
    return wall, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=2, help="candidates in the generation (and Ray CPU slots)")
    parser.add_argument("--seconds", type=float, default=4.0, help="CPU seconds of one candidate")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (ray, one after another); the median counts")
    parser.add_argument("--min-speedup", type=float, default=None, help="exit 1 if the median speed-up is below this")
    args = parser.parse_args()

    steps = calibrate(args.seconds)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, load average {load}; candidate: {steps:,} loop steps "
          f"(~{args.seconds:g} s on one core), cpus=1")

    started = time.perf_counter()
    ray_executor = RayExecutor(None, num_cpus=args.k)
    ratios = []
    try:
        # One tiny task per slot, so that every worker process exists; it reports its niceness.
        _, warm = timed(ray_executor, jobs(args.k, 0, "warmup", f"{sys.executable} -c 'import os; print(os.nice(0))'"))
        print(f"ray: local instance started and warmed up in {time.perf_counter() - started:.1f} s (not timed)")
        os.nice(max(0, int(warm[0].sandbox.stdout.split()[0]) - os.nice(0)))
        print(f"both sides run at nice {os.nice(0)}")
        for round_ in range(1, args.rounds + 1):
            parallel, par_jobs = timed(ray_executor, jobs(args.k, steps, f"ray{round_}"))
            serial, ser_jobs = timed(LocalExecutor(None, max_parallel=1), jobs(args.k, steps, f"serial{round_}"))
            ratios.append(serial / parallel)
            print(f"round {round_}:")
            for name, wall, results in [("  one after another (local, 1 slot)", serial, ser_jobs),
                                        (f"  ray, {args.k} CPU slots", parallel, par_jobs)]:
                each = ", ".join(f"{r.sandbox.duration:.2f} s wall / {r.sandbox.cpu_seconds:.2f} s CPU" for r in results)
                print(f"{name:36s} {wall:6.2f} s   jobs: {each}")
            print(f"  speed-up {serial / parallel:.2f}x  (ray wall / serial wall = {parallel / serial:.2f}; ideal {1 / args.k:.2f})")
    finally:
        ray_executor.close()

    speedup = statistics.median(ratios)
    print(f"speed-up, median of {len(ratios)} rounds: {speedup:.2f}x  (all: {', '.join(f'{r:.2f}' for r in ratios)})")
    if args.min_speedup is not None and speedup < args.min_speedup:
        sys.exit(f"speed-up {speedup:.2f} is below {args.min_speedup}")


if __name__ == "__main__":
    main()
