"""A toy next-token task scored with ``evaluate: model``, in numpy alone (no torch): fast enough
for the default suite, real enough to run the whole sealed path (scoring sandbox, harness,
checked outputs, causality probe, header-counted parameters).

The data is a seeded Markov chain over 8 tokens; the model is a bigram table of logits trained
by counting, smoothed by the config's ``alpha`` (the search knob); its weights are a
safetensors file that ``st.py`` (the candidate's own code) writes and reads with numpy.
"""

from __future__ import annotations

TOY_LM_PREPARE = '''\
import argparse, pathlib
import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument("--out", required=True)
out = pathlib.Path(parser.parse_args().out)
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(7)
V = 8
table = rng.dirichlet(np.full(V, 0.3), size=V)

def stream(n):
    s = np.empty(n, dtype=np.int64)
    s[0] = 0
    for i in range(1, n):
        s[i] = rng.choice(V, p=table[s[i - 1]])
    return s

np.save(out / "train.npy", stream(%(train)d))
np.save(out / "holdout.npy", stream(%(holdout)d))
np.save(out / "test.npy", stream(%(holdout)d))
'''

TOY_LM_ST = '''\
"""A safetensors file with numpy: 8-byte header length, JSON header, raw bytes."""
import json, struct
import numpy as np

def save(tensors, path):
    header, offset, blobs = {}, 0, []
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, dtype=np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))

def load(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    return {k: np.frombuffer(data[v["data_offsets"][0]:v["data_offsets"][1]], dtype=np.float32).reshape(v["shape"])
            for k, v in header.items() if k != "__metadata__"}
'''

TOY_LM_TRAIN = '''\
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
st.save({"bigram": np.log(counts + alpha)}, pathlib.Path(args.out) / "model.safetensors")
print("trained")
'''

TOY_LM_MODEL = '''\
import pathlib
import numpy as np
import st

def predict(inputs, artifacts):
    table = st.load(pathlib.Path(artifacts) / "model.safetensors")["bigram"]
    return table[np.asarray(inputs)]
'''

TOY_LM_SCORE = '''\
import argparse, math
import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument("--logprobs", required=True)
lp = np.load(parser.parse_args().logprobs, allow_pickle=False)
print(f"bits: {float(-lp.mean() / math.log(2)):.6f}")
'''

TOY_LM_SPEC = '''\
name: toy-lm
objective: {metric: bits, goal: minimize}
data:
  prepare: python prepare.py --out {data}
  visible: [train.npy]
  test: {inputs: test.npy, labels: test.npy}
train:
  command: python train.py --data {data} --out {out}
  timeout: 60
  resources: {cpus: 1, memory: 1g}
evaluate: model
predict:
  entry: model.py:predict
  inputs: holdout.npy
  batch_size: 32
  timeout: 60
  sequence: {context: 16, probes: %(probes)d}
scorer:
  command: python score.py --logprobs {outputs}
  test:
    command: python score.py --logprobs {outputs}
protected: [prepare.py, score.py]
search_space:
  file: config.yaml
  params:
    alpha: {type: float, low: 0.01, high: 50.0, log: true}
guards: [{metric: params, max: %(max_params)d}]
budget: {generations: %(generations)d, candidates: %(candidates)d}
sandbox: {backend: process}
'''


def toy_lm_files(generations: int = 1, candidates: int = 2, alpha: float = 20.0, probes: int = 64,
                 max_params: int = 64, train: int = 20_000, holdout: int = 4_000) -> dict[str, str]:
    """The toy language-model task's files (a bigram of 8 tokens has 64 parameters)."""
    return {
        "progenitor.yaml": TOY_LM_SPEC % {"generations": generations, "candidates": candidates, "probes": probes,
                                          "max_params": max_params},
        "prepare.py": TOY_LM_PREPARE % {"train": train, "holdout": holdout},
        "train.py": TOY_LM_TRAIN,
        "model.py": TOY_LM_MODEL,
        "st.py": TOY_LM_ST,
        "score.py": TOY_LM_SCORE,
        "config.yaml": f"# additive smoothing of the bigram counts\nalpha: {alpha}\n",
    }
