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
x = rng.uniform(1, 2, size=(60,))
np.save(os.path.join(args.out, "train_x.npy"), x[:20])
np.save(os.path.join(args.out, "train_y.npy"), 3 * x[:20])
np.save(os.path.join(args.out, "holdout_inputs.npy"), x[20:40])
np.save(os.path.join(args.out, "holdout_labels.npy"), 3 * x[20:40])
np.save(os.path.join(args.out, "test_inputs.npy"), x[40:])
np.save(os.path.join(args.out, "test_labels.npy"), %(test_labels)s)
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
if os.path.exists(os.path.join(args.data, "test_inputs.npy")):
    np.save(os.path.join(args.out, "test_predictions.npy"), w * np.load(os.path.join(args.data, "test_inputs.npy")))
with open(os.path.join(args.out, "progress.jsonl"), "a") as f:
    f.write(json.dumps({"step": 1, "error": abs(w - 3)}) + "\\n")
print(f"error: {abs(w - 3) * 1.5:.6f}")
'''

_CURVE_TRAIN = '''\
import argparse, json, os, time
import numpy as np
import yaml

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
parser.add_argument("--out", required=True)
args = parser.parse_args()
w = float(yaml.safe_load(open("config.yaml"))["w"])
x = np.load(os.path.join(args.data, "holdout_inputs.npy"))
error = abs(w - 3) * float(x.mean())  # what the scorer will measure
for step in range(1, %(steps)d + 1):
    with open(os.path.join(args.out, "progress.jsonl"), "a") as f:
        f.write(json.dumps({"step": step, "error": %(curve)s}) + "\\n")
    time.sleep(%(pause)r)
np.save(os.path.join(args.out, "predictions.npy"), w * x)
'''


def curve_train(steps: int, pause: float, curve: str = "error + 0.03 * (%(steps)d - step)") -> str:
    """The toy task's train.py with a progress curve of ``steps`` points, ``pause`` seconds apart.

    ``curve`` is the Python expression written at each ``step`` (``error`` is what the scorer
    will measure); the default ends honestly, at ``error``."""
    return _CURVE_TRAIN % {"steps": steps, "pause": pause, "curve": curve % {"steps": steps}}


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

TOY_TEST_SPLIT = """\
data:
  prepare: python prepare.py --out {data}
  visible: [train_*.npy, holdout_inputs.npy, test_inputs.npy]
  test: {inputs: test_inputs.npy, labels: test_labels.npy}
"""
TOY_TEST_SCORER = """\
  test:
    command: python score.py --predictions {out}/test_predictions.npy --labels {data}/test_labels.npy
    predictions: {file: test_predictions.npy, match: test_labels.npy}
"""


TOY_OVERSIGHT = "max_relative_gain: null"
"""The toy's baseline is far off on purpose (w = 1 against 3): its first tuning step removes
95 % of the error, which the first-generation jump rule (``oversight.max_relative_gain``) would
escalate to a person in every run. Off here; the tests of that rule turn it on."""


def toy_task_files(generations: int = 2, candidates: int = 2, timeout: float = 30, w: float = 1.0,
                   test_split: bool = False, test_labels: str = "3 * x[40:]", oversight: str = "") -> dict[str, str]:
    """The toy task's files. ``test_split``: declare the final test split (whose labels
    ``test_labels``, a numpy expression over ``x``, lets a test change them); ``oversight``: more
    fields of its ``oversight:`` mapping (``"mode: approver, poll_seconds: 0.05"``), which come
    after ``TOY_OVERSIGHT`` and so may override it."""
    spec = TOY_SPEC % {"generations": generations, "candidates": candidates, "timeout": timeout}
    spec += f"oversight: {{{TOY_OVERSIGHT}{', ' + oversight if oversight else ''}}}\n"
    if test_split:
        spec = spec.replace(spec[spec.index("data:"):spec.index("train:")], TOY_TEST_SPLIT)
        spec = spec.replace("protected:", TOY_TEST_SCORER + "protected:")
    return {
        "progenitor.yaml": spec,
        "prepare.py": TOY_PREPARE % {"test_labels": test_labels},
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
