"""How long a cancel takes on the Ray executor, on a quiet machine and with the cores
oversubscribed.

Each round starts three 1-CPU sandboxed sleepers on a 2-CPU local Ray instance (two run, one
waits in Ray's queue), cancels them at a random moment in their first second (the moment a
cancel used to get lost in: a task still starting up), and measures the seconds from
``cancel()`` to ``run()`` returning and to the last sandboxed process being gone. The loaded
rounds run the same with BURNERS busy loops (nice 0) competing for the cores.

    PYTHONPATH=. python bench/ray_cancel.py [--rounds 20] [--burners 4]

Prints median and worst of both figures, quiet and loaded, and the loaded/quiet ratio.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from progenitor.compute.base import TrainJob, tree_archive
from progenitor.compute.ray_executor import RayConfig, RayExecutor, connect
from progenitor.sandbox.base import Limits


def _processes_with(marker: str) -> int:
    found = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            found += marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
    return found


def one_round(rng: random.Random) -> tuple[float, float]:
    """(seconds from cancel to run() returning, seconds from cancel to no sandbox left)."""
    marker = f"bench-cancel-{uuid.uuid4().hex[:8]}"
    command = f"{sys.executable} -c \"import time; time.sleep(300)\" {marker}"
    jobs = [TrainJob(key=f"bench/g1/c{k}", command=command, tree_archive=tree_archive({"README": "tree\n"}),
                     limits=Limits(cpus=1, wall_time=400)) for k in range(3)]
    executor = RayExecutor(None)
    results: list = []
    consumer = threading.Thread(target=lambda: results.extend(executor.run(jobs)), daemon=True)
    consumer.start()
    while not executor.inflight():  # submitted: from here on a cancel concerns these tasks
        time.sleep(0.001)
    time.sleep(rng.uniform(0, 1.0))
    began = time.monotonic()
    executor.cancel()
    consumer.join(120)
    returned = time.monotonic() - began
    while _processes_with(marker) and time.monotonic() - began < 120:
        time.sleep(0.02)
    gone = time.monotonic() - began
    executor.close()
    if consumer.is_alive() or len(results) != len(jobs):
        raise SystemExit(f"run() did not return within 120 s of cancel(): {results}")
    return returned, gone


def series(rounds: int, seed: int) -> tuple[list[float], list[float]]:
    rng = random.Random(seed)
    pairs = [one_round(rng) for _ in range(rounds)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _line(name: str, values: list[float]) -> str:
    return f"{name:<28} median {statistics.median(values):6.2f} s   worst {max(values):6.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--burners", type=int, default=4)
    args = parser.parse_args()
    connect(RayConfig(address=None, num_cpus=2))
    series(2, seed=99)  # warm the workers up
    quiet = series(args.rounds, seed=1)
    burners = [subprocess.Popen(["nice", "-n", "0", sys.executable, "-c", "while 1: pass"])
               for _ in range(args.burners)]
    try:
        loaded = series(args.rounds, seed=1)
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    print(f"{args.rounds} rounds each; loaded: {args.burners} busy loops on {os.cpu_count()} cores")
    for label, (ret, gone) in (("quiet", quiet), ("loaded", loaded)):
        print(_line(f"{label}: cancel -> run() returns", ret))
        print(_line(f"{label}: cancel -> sandboxes gone", gone))
    print(f"loaded / quiet, worst time to no sandbox left: {max(loaded[1]) / max(quiet[1]):.1f}x")


if __name__ == "__main__":
    main()
