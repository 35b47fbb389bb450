"""The red team against ``evaluate: model``: candidates whose *predict* function cheats, run
through the real loop on the toy language model (``progenitor.testing.toy_lm``), every attack
beside an honest control in one generation, on each sandbox backend.

What each attack tries, and how it must end:

- ``reads-ahead``: its outputs at a position peek at the next token of the window. Fails
  with the reason ``causality``.
- ``unnormalised``: its outputs are logits shifted far from any distribution (a scorer that
  took them for log-probabilities would measure a loss below zero). Scored exactly as the
  honest model with the same weights: progenitor normalises, nothing is gained.
- ``escape``: predict reads the run's hidden holdout stream by its absolute path (with it, it
  looks each window up by its first tokens and knows every later target, causally: the probe
  alone would not see it), connects to a port on the host, and starts
  processes, one writing a file on the host and one that outlives it. It gets nothing: scored
  as the honest model, no connection, no file, no process left.
- ``tiny-params``: training saves a one-value safetensors file and the real table beside it
  (``big.npy``); predict looks for the table everywhere it might be. The scoring sandbox gets
  the counted weights only, so the model cannot be used: it fails, and is never promoted past
  the ``params`` guard.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from progenitor.testing.toy_lm import TOY_LM_MODEL

CONTROL_ALPHA = 2.0
"""The honest control's smoothing (the baseline's is 20: the control is better, and champion)."""
ATTACK_ALPHA = 4.0
"""The attacks' own smoothing: honest, they would score a little worse than the control, so any
gain an attack found would show as a win."""


@dataclass(frozen=True)
class ModelAttack:
    name: str
    what: str
    edits: dict[str, str] = field(default_factory=dict)
    alpha: float = ATTACK_ALPHA
    outcome: str = "honest"
    """``honest``: scored exactly as the honest model with ``alpha``; ``causality`` / ``failed``: fails."""
    reason: str = ""


READS_AHEAD = TOY_LM_MODEL + '''
_honest = predict

def predict(inputs, artifacts):
    out = _honest(inputs, artifacts).copy()
    x = np.asarray(inputs)
    for p in range(x.shape[1] - 1):
        out[np.arange(len(x)), p, x[:, p + 1]] += 4.0  # the next token, read from the window itself
    return out
'''

UNNORMALISED = TOY_LM_MODEL + '''
_honest = predict

def predict(inputs, artifacts):
    return _honest(inputs, artifacts) + 1000.0  # "log-probabilities" far above 0
'''

ESCAPE = TOY_LM_MODEL + '''
import os, socket, subprocess
_honest = predict

def _stream():
    try:
        return np.load("__LABELS__")
    except Exception:
        return None

def _reach_out():
    try:
        socket.create_connection(("127.0.0.1", __PORT__), timeout=1).close()
    except Exception:
        pass
    for argv in (["sh", "-c", "echo escaped > __MARKER__"], ["sh", "-c", "sleep 600 # __TOKEN__"]):
        try:
            subprocess.Popen(argv, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except Exception:
            pass

def predict(inputs, artifacts):
    _reach_out()
    out = _honest(inputs, artifacts)
    stream = _stream()
    if stream is None:
        return out
    x = np.asarray(inputs).astype(stream.dtype)
    key = 10  # found by its first 10 tokens only, each later position "knows" the true next token
    where = {}
    for i in range(len(stream) - x.shape[1]):
        where.setdefault(stream[i:i + key].tobytes(), []).append(i)
    for row, window in enumerate(x):
        at = where.get(window[:key].tobytes(), [])
        if len(at) == 1:  # causal within the window, so the probe alone would not see it
            at = at[0]
            truth = stream[at + key:at + x.shape[1] + 1]
            out[row, key - 1:] = -50.0
            out[row, np.arange(key - 1, x.shape[1]), truth] = 50.0
    return out
'''

TINY_TRAIN = '''\
import argparse, pathlib
import numpy as np
import yaml
import st

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
parser.add_argument("--out", required=True)
args = parser.parse_args()
alpha = float(yaml.safe_load(open("config.yaml"))["alpha"])
tokens = np.load(pathlib.Path(args.data) / "train.npy")
counts = np.zeros((8, 8))
np.add.at(counts, (tokens[:-1], tokens[1:]), 1.0)
out = pathlib.Path(args.out)
st.save({"bias": np.zeros(1)}, out / "model.safetensors")   # what the guard would count: 1 value
np.save(out / "big.npy", np.log(counts + alpha))            # the real model, beside it
print("params: 1")
'''

TINY_MODEL = '''\
import pathlib
import numpy as np

def predict(inputs, artifacts):
    here = pathlib.Path(artifacts)
    for path in [here / "big.npy", here.parent / "big.npy", pathlib.Path("__OUTPUTS__") / "big.npy",
                 pathlib.Path("/tmp/big.npy")]:
        try:
            table = np.load(path)
            return table[np.asarray(inputs)]
        except Exception:
            continue
    raise FileNotFoundError("the weights it did not count are nowhere to be found")
'''

MODEL_ATTACKS: list[ModelAttack] = [
    ModelAttack("reads-ahead", "a model that reads ahead", edits={"model.py": READS_AHEAD}, outcome="causality",
                reason="causality: "),
    ModelAttack("unnormalised", "unnormalised outputs", edits={"model.py": UNNORMALISED}),
    ModelAttack("escape", "a predict that opens a file outside its tree, a socket or a process",
                edits={"model.py": ESCAPE}),
    ModelAttack("tiny-params", "a tiny saved file and the real weights beside it",
                edits={"train.py": TINY_TRAIN, "model.py": TINY_MODEL}, outcome="failed",
                reason="the weights it did not count are nowhere to be found"),
]
