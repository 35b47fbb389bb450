"""Per-candidate overhead of the docker sandbox against the process sandbox (the baseline).

Runs the same trivial candidates (``true`` and a Python one-liner) N times in each backend,
each run in fresh tree / out / data directories laid out as ``execute_job`` lays them, and
prints the median and mean wall seconds of one ``Sandbox.run`` and the docker/process ratio.
For docker that is container create + start + mounts + attach + wait + remove.

    python bench/sandbox_overhead.py [--n 20] [--image progenitor-base:bookworm]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from progenitor.sandbox.base import Limits, Sandbox, SandboxSpec

CANDIDATES = {"true": "true", "python3 -c pass": "python3 -c pass"}


def time_runs(sandbox: Sandbox, command: str, n: int) -> list[float]:
    """Wall seconds of ``n`` runs of ``command``, after one untimed warm-up run."""
    times = []
    for i in range(n + 1):
        base = Path(tempfile.mkdtemp(prefix="progenitor-bench-"))
        os.chmod(base, 0o755)
        dirs = {name: base / name for name in ("tree", "out", "data")}
        for path in dirs.values():
            path.mkdir()
        spec = SandboxSpec(command=command, limits=Limits(wall_time=60), labels={"run": "bench"}, **dirs)
        started = time.perf_counter()
        result = sandbox.run(spec)
        elapsed = time.perf_counter() - started
        shutil.rmtree(base, ignore_errors=True)
        if not result.ok:
            sys.exit(f"{sandbox.name}: {command!r} failed: {result.reason}")
        if i:  # the first run warms caches (page cache, image layers, imports)
            times.append(elapsed)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="timed runs per candidate and backend")
    parser.add_argument("--image", default=None, help="docker image (default: the base image)")
    args = parser.parse_args()

    from progenitor.sandbox.docker import DockerSandbox
    from progenitor.sandbox.process import ProcessSandbox

    backends: dict[str, Sandbox] = {"process": ProcessSandbox(), "docker": DockerSandbox(image=args.image)}
    check = backends["docker"].check()
    if not check.available:
        sys.exit(f"docker: {check.detail}")
    print(f"sandbox overhead per candidate, {args.n} runs each (seconds; baseline: process backend)")
    print(f"process: {backends['process'].check().detail}")
    print(f"docker:  {check.detail}")
    print(f"{'candidate':<18}{'process med':>12}{'docker med':>12}{'process mean':>14}{'docker mean':>13}{'ratio med':>11}")
    for label, command in CANDIDATES.items():
        runs = {name: time_runs(sandbox, command, args.n) for name, sandbox in backends.items()}
        med = {name: statistics.median(times) for name, times in runs.items()}
        mean = {name: statistics.fmean(times) for name, times in runs.items()}
        print(f"{label:<18}{med['process']:>12.3f}{med['docker']:>12.3f}{mean['process']:>14.3f}"
              f"{mean['docker']:>13.3f}{med['docker'] / med['process']:>10.1f}x")


if __name__ == "__main__":
    main()
