"""Real git repositories for tests, and the toy task.

The toy task learns one number: labels are ``3 * inputs`` and a candidate predicts
``w * inputs`` with ``w`` from ``config.yaml``; the scorer prints the mean absolute
``error`` (minimised). It needs only numpy and trains in a fraction of a second.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Optional

from progenitor.lineage import IDENTITY

TOY_PREPARE = '''\
import argparse, os
import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument("--out", required=True)
args = parser.parse_args()
rng = np.random.default_rng(0)
x = rng.uniform(1, 2, size=(40,))
np.save(os.path.join(args.out, "train_x.npy"), x[:20])
np.save(os.path.join(args.out, "train_y.npy"), 3 * x[:20])
np.save(os.path.join(args.out, "holdout_inputs.npy"), x[20:])
np.save(os.path.join(args.out, "holdout_labels.npy"), 3 * x[20:])
'''

TOY_TRAIN = '''\
import argparse, json, os
import numpy as np
import yaml

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
parser.add_argument("--out", required=True)
args = parser.parse_args()
config = yaml.safe_load(open("config.yaml"))
w = float(config["w"])
x = np.load(os.path.join(args.data, "holdout_inputs.npy"))
np.save(os.path.join(args.out, "predictions.npy"), w * x)
with open(os.path.join(args.out, "progress.jsonl"), "a") as f:
    f.write(json.dumps({"step": 1, "error": abs(w - 3)}) + "\\n")
print(f"error: {abs(w - 3) * 1.5:.6f}")
'''

TOY_SCORE = '''\
import argparse
import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument("--predictions", required=True)
parser.add_argument("--labels", required=True)
args = parser.parse_args()
p = np.load(args.predictions, allow_pickle=False)
y = np.load(args.labels, allow_pickle=False)
print(f"error: {float(np.abs(p - y).mean()):.6f}")
print(f"params: 1")
'''

TOY_SPEC = '''\
name: toy
objective: {metric: error, goal: minimize}
data:
  prepare: python prepare.py --out {data}
  visible: [train_*.npy, holdout_inputs.npy]
train:
  command: python train.py --data {data} --out {out}
  timeout: %(timeout)s
  resources: {cpus: 1, memory: 1g}
scorer:
  command: python score.py --predictions {out}/predictions.npy --labels {data}/holdout_labels.npy
  predictions: {file: predictions.npy, match: holdout_labels.npy}
protected: [prepare.py, score.py]
search_space:
  file: config.yaml
  params:
    w: {type: float, low: 0.0, high: 6.0}
guards: [{metric: params, max: 10}]
budget: {generations: %(generations)s, candidates: %(candidates)s}
sandbox: {backend: process}
'''


def toy_task_files(generations: int = 2, candidates: int = 2, timeout: float = 30, w: float = 1.0) -> dict[str, str]:
    return {
        "progenitor.yaml": TOY_SPEC % {"generations": generations, "candidates": candidates, "timeout": timeout},
        "prepare.py": TOY_PREPARE,
        "train.py": TOY_TRAIN,
        "score.py": TOY_SCORE,
        "config.yaml": f"# the weight the model multiplies its input by\nw: {w}\n",
    }


def make_repo(path: Path, files: dict[str, str], message: str = "baseline", extra: Optional[dict[str, str]] = None) -> Path:
    """A real git repository at ``path`` with ``files`` committed on ``main``."""
    import git

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    repo = git.Repo.init(path, initial_branch="main")
    for rel, content in {**files, **(extra or {})}.items():
        target = path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(content) if content.startswith("\n") else content)
    repo.git.add("--all")
    repo.git.commit("--quiet", "-m", message, env={**os.environ, **IDENTITY})
    return path
