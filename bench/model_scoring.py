"""What the sealed scoring of ``evaluate: model`` costs: the scoring sandbox against scoring the
same weights in-process, for both bundled examples.

For each example: prepare its data, train its baseline once, then time, interleaved, ``--n``
times each:

- **in-process** (the baseline): a fresh Python process that imports the candidate's model.py,
  loads the weights and computes the metric on the same holdout inputs: what a trusted scorer
  that imported the candidate's code (the unsafe route) would cost, start-up included;
- **warm**: the same forward pass in this already-warm process (no start-up at all);
- **sandbox**: ``score_model``: the scoring sandbox(es) (for charlm: two, with the causality
  probe's windows), the checks and the trusted scorer command;
- for charlm, **no probe**: the same with ``probes: 0`` (one sandbox, no probe windows): the
  difference is the probe's cost.

It prints the median wall seconds of each, the CPU seconds the sandboxes used, and the ratios
sandbox / in-process and sandbox / warm. The target is sandbox / in-process <= 1.5 on charlm.

    python bench/model_scoring.py [--n 3] [--backend process|docker] [--image TAG] [--examples charlm digits]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

IN_PROCESS = r'''
import math, sys, numpy as np
sys.path.insert(0, sys.argv[1])
import model
from progenitor.evaluation import causality
inputs = np.load(sys.argv[3])
if sys.argv[4] == "charlm":
    x, y = causality.windows(inputs.astype(np.int64), 128)
    out = np.concatenate([model.predict(x[i:i + 64], sys.argv[2]) for i in range(0, len(x), 64)])
    print(-causality.target_logprobs(out, y).mean() / math.log(2))
else:
    out = np.concatenate([model.predict(inputs[i:i + 64], sys.argv[2]) for i in range(0, len(inputs), 64)])
    labels = np.load(sys.argv[3].replace("inputs", "labels"))
    print((out.argmax(1) == labels).mean())
'''

HOLDOUT = {"charlm": "holdout.npy", "digits": "holdout_inputs.npy"}


def setup(name: str, root: Path) -> dict:
    """The example's data and its baseline's weights."""
    from progenitor.evaluation.scorer import run_prepare
    from progenitor.task.spec import load_spec

    example = ROOT / "examples" / name
    spec = load_spec(example)
    data, out = root / name / "data", root / name / "out"
    out.mkdir(parents=True)
    run_prepare(spec, example, data)
    subprocess.run([sys.executable, "train.py", "--data", str(data), "--out", str(out)], cwd=example, check=True,
                   capture_output=True, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    return {"example": example, "spec": spec, "data": data, "out": out}


def in_process(case: dict, name: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", IN_PROCESS, str(case["example"]), str(case["out"]),
                    str(case["data"] / HOLDOUT[name]), name], check=True, capture_output=True,
                   env={"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    return time.perf_counter() - started


def warm(case: dict, name: str) -> float:
    import numpy as np
    import torch

    from progenitor.evaluation import causality

    torch.set_num_threads(1)
    sys.path.insert(0, str(case["example"]))
    sys.modules.pop("model", None)
    import model

    inputs = np.load(case["data"] / HOLDOUT[name])
    started = time.perf_counter()
    if name == "charlm":
        x, y = causality.windows(inputs.astype(np.int64), 128)
        out = np.concatenate([model.predict(x[i:i + 64], str(case["out"])) for i in range(0, len(x), 64)])
        causality.target_logprobs(out, y)
    else:
        np.concatenate([model.predict(inputs[i:i + 64], str(case["out"])) for i in range(0, len(inputs), 64)])
    elapsed = time.perf_counter() - started
    sys.path.remove(str(case["example"]))
    return elapsed


def without_probe(spec):
    seq = spec.predict.sequence.model_copy(update={"probes": 0})
    return spec.model_copy(update={"predict": spec.predict.model_copy(update={"sequence": seq})})


def sandboxed(case: dict, backend: str, options: dict, root: Path, spec=None) -> tuple[float, float]:
    from progenitor.compute.base import tree_archive
    from progenitor.evaluation.model_eval import ScoringSandbox, score_model

    files = {p.name: p.read_bytes() for p in case["example"].iterdir() if p.is_file()}
    started = time.perf_counter()
    result = score_model(spec or case["spec"], "holdout", case["example"], case["data"], case["out"], tree_archive(files),
                         Path(tempfile.mkdtemp(dir=root)), ScoringSandbox(backend=backend, options=options))
    elapsed = time.perf_counter() - started
    if not result.ok:
        sys.exit(f"the scoring sandbox failed: {result.reason}")
    return elapsed, result.metrics["eval_cpu_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3, help="timed rounds per example")
    parser.add_argument("--backend", default="process", choices=["process", "docker"])
    parser.add_argument("--image", help="the docker task image (progenitor sandbox build examples/NAME)")
    parser.add_argument("--examples", nargs="+", default=["charlm", "digits"])
    args = parser.parse_args()
    options = {"image": args.image} if args.image else {}
    root = Path(tempfile.mkdtemp(prefix="progenitor-bench-"))
    for name in args.examples:
        case = setup(name, root)
        cold, hot, box, cpu, bare = [], [], [], [], []
        for _ in range(args.n):  # interleaved: a busy moment of the machine hits all three alike
            cold.append(in_process(case, name))
            hot.append(warm(case, name))
            seconds, cpu_seconds = sandboxed(case, args.backend, options, root)
            box.append(seconds)
            cpu.append(cpu_seconds)
            if case["spec"].predict.sequence is not None:
                bare.append(sandboxed(case, args.backend, options, root, without_probe(case["spec"]))[0])
        med = {k: statistics.median(v) for k, v in (("in-process", cold), ("warm", hot), ("sandbox", box))}
        print(f"{name}: in-process {med['in-process']:.2f} s, warm {med['warm']:.2f} s, {args.backend} scoring "
              f"sandbox {med['sandbox']:.2f} s ({statistics.median(cpu):.2f} CPU-s in the sandboxes); "
              f"sandbox / in-process {med['sandbox'] / med['in-process']:.2f}x, "
              f"sandbox / warm {med['sandbox'] / med['warm']:.2f}x (median of {args.n})")
        if bare:
            print(f"{name}: without the probe (probes: 0, one sandbox) {statistics.median(bare):.2f} s: the probe "
                  f"costs {statistics.median(box) / statistics.median(bare):.2f}x")


if __name__ == "__main__":
    main()
