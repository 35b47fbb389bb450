"""What candidate data costs the driver: time and peak memory of the host's parsers on hostile
inputs, against an honest input of the same kind measured in the same run.

Each measurement runs in a fresh Python process (so its peak RSS is its own) and reports its
seconds, its peak RSS above a bare interpreter with numpy, and how it ended:

- predictions: an honest 1,000,000-float .npy (the baseline); a zip of ENTRIES empty members
  under the .npy name, read by the boundary (``check_predictions``) and, for comparison, by
  ``np.load`` as the driver read it before (an ``NpzFile`` that lists every member);
- a metric line: an honest JSON object, and one nested 100,000 deep (``parse_metrics`` now,
  ``json.loads`` before);
- a tree walk: 1,200 nested directories (``boundary.walk`` now, ``os.walk`` before).

    PYTHONPATH=. python bench/candidate_data.py [--entries 300000]

Prints one line per case, with its time and memory as ratios of the honest case's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from progenitor.boundary.walk import remove_tree

PROBE = r"""
import json, os, resource, sys, time
import numpy as np

from progenitor.boundary.walk import remove_tree
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
case, path = sys.argv[1], sys.argv[2]
started = time.perf_counter()
try:
    if case == "check":
        from progenitor.evaluation.scorer import check_predictions
        from progenitor.task.spec import Predictions
        end = check_predictions(Predictions(file=os.path.basename(path)), None, __import__("pathlib").Path(path).parent) or "ok"
    elif case == "np.load":
        loaded = np.load(path, allow_pickle=False)
        end = f"{type(loaded).__name__} of {len(getattr(loaded, 'files', [])) or loaded.size} members/values"
    elif case == "metrics":
        from progenitor.boundary.metrics import parse_metrics
        end = f"{len(parse_metrics(open(path).read()))} metrics"
    elif case == "json.loads":
        end = f"{type(json.loads(open(path).read())).__name__}"
    elif case == "walk":
        from progenitor.boundary.walk import walk
        refused = []
        end = f"{sum(1 for _ in walk(path, refused=refused))} entries, {len(refused)} refused"
    elif case == "os.walk":
        end = f"{sum(len(d) + len(f) for _, d, f in os.walk(path))} entries"
except BaseException as exc:
    end = f"raised {type(exc).__name__}"
took = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
print(json.dumps({"seconds": took, "kib": peak, "end": end[:80]}))
"""


def measure(case: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, case, str(path)], capture_output=True, text=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def deep_tree(root: Path, levels: int) -> Path:
    import os

    top = root / "deep"
    top.mkdir()
    fd = os.open(top, os.O_RDONLY)
    for _ in range(levels):
        os.mkdir("d", dir_fd=fd)
        child = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.close(fd)
    return top


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=300_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        honest = root / "honest" / "predictions.npy"
        honest.parent.mkdir()
        np.save(honest, np.random.default_rng(0).normal(size=1_000_000))
        bomb = root / "bomb" / "predictions.npy"
        bomb.parent.mkdir()
        with zipfile.ZipFile(bomb, "w") as z:
            for i in range(args.entries):
                z.writestr(f"{i}.npy", b"")
        (root / "honest.txt").write_text(json.dumps({"error": 0.5, "accuracy": 0.9}) + "\n")
        (root / "deep.txt").write_text('{"error": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
        tree = deep_tree(root, 1200)
        cases = [
            ("predictions", "honest .npy, 1e6 floats", "check", honest),
            ("predictions", f"zip of {args.entries} members (boundary)", "check", bomb),
            ("predictions", f"zip of {args.entries} members (np.load, before)", "np.load", bomb),
            ("metric line", "honest JSON object", "metrics", root / "honest.txt"),
            ("metric line", "nested 100,000 deep (boundary)", "metrics", root / "deep.txt"),
            ("metric line", "nested 100,000 deep (json.loads, before)", "json.loads", root / "deep.txt"),
            ("tree walk", "1,200 directories deep (boundary)", "walk", tree),
            ("tree walk", "1,200 directories deep (os.walk, before)", "os.walk", tree),
        ]
        print(f"zip bomb: {bomb.stat().st_size / 2**20:.1f} MiB on disk")
        baselines: dict[str, dict] = {}
        for kind, label, case, path in cases:
            got = measure(case, path)
            base = baselines.setdefault(kind, got)
            ratio_t = got["seconds"] / max(base["seconds"], 1e-6)
            # Peak memory above a bare interpreter with numpy: the honest cases add under 1 MiB, so the
            # hostile ones are shown in MiB, with a ratio only where the honest case grew at all.
            ratio_m = f"{got['kib'] / base['kib']:7.1f}x" if base["kib"] >= 1024 else "       "
            print(f"{kind:12} {label:48} {got['seconds']:8.3f} s ({ratio_t:8.1f}x)  "
                  f"+{got['kib'] / 1024:7.1f} MiB {ratio_m}  {got['end']}")
        remove_tree(tree)  # shutil.rmtree, which TemporaryDirectory uses, recurses once per level


if __name__ == "__main__":
    main()
