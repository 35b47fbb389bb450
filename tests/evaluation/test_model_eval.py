"""``evaluate: model``: the scoring sandbox, its narrow channel and the trusted measurements,
on the numpy-only toy language model (real sandboxes, the process backend)."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest
import yaml

from progenitor.compute.base import tree_archive
from progenitor.errors import CandidateError, SpecError
from progenitor.evaluation import causality
from progenitor.evaluation.model_eval import ScoringSandbox, score_model
from progenitor.evaluation.npy_channel import read_outputs
from progenitor.evaluation.safetensors_header import MAX_METADATA_BYTES, weights_info
from progenitor.evaluation.scorer import run_prepare
from progenitor.task.spec import parse_spec
from progenitor.testing import toy_lm_files


def safetensors(path: Path, tensors: dict[str, tuple[str, list[int], bytes]], metadata=None, tail: bytes = b"") -> Path:
    header, blobs, at = {}, [], 0
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [at, at + len(data)]}
        at += len(data)
        blobs.append(data)
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs) + tail)
    return path


def raw(path: Path, header: dict, data: bytes) -> None:
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)


# -- the safetensors header ---------------------------------------------------------------------
def test_params_are_counted_from_the_header(tmp_path):
    path = safetensors(tmp_path / "m.safetensors", {"w": ("F32", [3, 4], bytes(48)), "b": ("F16", [5], bytes(10))},
                       metadata={"config": "small"})
    info = weights_info([path])
    assert (info.params, info.weights_bytes, info.tensors) == (17, 58, 2)


def test_packing_into_wider_elements_does_not_shrink_the_count(tmp_path):
    """A float32 model stored as float64 (or int64) bit pairs counts as many parameters as itself."""
    honest = safetensors(tmp_path / "a.safetensors", {"w": ("F32", [1000], bytes(4000))})
    packed = safetensors(tmp_path / "b.safetensors", {"w": ("I64", [500], bytes(4000))})
    assert weights_info([honest]).params == weights_info([packed]).params == 1000


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b"\x01"), "shorter than"),
    (lambda p: p.write_bytes(struct.pack("<Q", 1 << 40) + b"{}"), "header claims"),
    (lambda p: p.write_bytes(struct.pack("<Q", 3) + b"{x}"), "not JSON"),
    (lambda p: safetensors(p, {"w": ("F32", [2], bytes(8))}, tail=b"hidden weights"), "belong to no tensor"),
    (lambda p: safetensors(p, {"w": ("F32", [4], bytes(8))}), "claims 8 bytes"),
    (lambda p: safetensors(p, {"w": ("Q4", [2], bytes(8))}), "unknown dtype"),
    (lambda p: safetensors(p, {"w": (["F32"], [2], bytes(8))}), "unknown dtype"),  # unhashable: was a TypeError
    (lambda p: safetensors(p, {"w": ({"F32": 1}, [2], bytes(8))}), "unknown dtype"),
    (lambda p: safetensors(p, {}, metadata={"w": "0" * (MAX_METADATA_BYTES + 1)}), "__metadata__ is larger"),
    (lambda p: raw(p, {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                       "b": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, bytes(8)), "overlap"),
    (lambda p: raw(p, {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8], "extra": 1}}, bytes(8)),
     "exactly dtype"),
])
def test_a_bad_weights_file_is_the_candidates_failure(tmp_path, make, message):
    path = tmp_path / "m.safetensors"
    make(path)
    with pytest.raises(CandidateError, match=message):
        weights_info([path])


# -- the narrow channel -------------------------------------------------------------------------
def test_outputs_are_read_with_every_check(tmp_path):
    path = tmp_path / "outputs.npy"
    np.save(path, np.ones((4, 3), dtype=np.float32))
    assert read_outputs(path, 4, (2,), 1 << 20).shape == (4, 3)
    for rows, ndim, cap, message in [(5, (2,), 1 << 20, "expected 5 rows"), (4, (3,), 1 << 20, "dimensions"),
                                     (4, (2,), 10, "more than the 10")]:
        with pytest.raises(CandidateError, match=message):
            read_outputs(path, rows, ndim, cap)
    np.save(path, np.array([[1.0, np.nan]]))
    with pytest.raises(CandidateError, match="NaN or infinite"):
        read_outputs(path, 1, (2,), 1 << 20)
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(CandidateError, match="is not a real number"):
        read_outputs(path, 1, (1,), 1 << 20)
    np.save(path, np.ones((1000, 1000)))  # a header that claims more than the file holds
    path.write_bytes(path.read_bytes()[:4096])
    with pytest.raises(CandidateError, match="length does not match"):
        read_outputs(path, 1000, (2,), 1 << 30)
    (tmp_path / "link.npy").symlink_to(path)
    with pytest.raises(CandidateError, match="no outputs"):
        read_outputs(tmp_path / "link.npy", 1000, (2,), 1 << 30)


# -- the spec -----------------------------------------------------------------------------------
def spec_text(**change) -> dict:
    spec = yaml.safe_load(toy_lm_files()["progenitor.yaml"])
    for dotted, value in change.items():
        *parents, last = dotted.split("__")
        node = spec
        for p in parents:
            node = node[p]
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return spec


@pytest.mark.parametrize("change, message", [
    ({"predict": None}, "'evaluate: model' needs the candidate's predict entry point"),
    ({"scorer__command": "python score.py --model {out}/model.pt"}, "names {out}, but with 'evaluate: model'"),
    ({"evaluate": "predictions"}, "'predict' is read only with 'evaluate: model'"),
    ({"predict__entry": "../x.py:predict"}, "is not an entry point"),
    ({"predict__artifacts": ["model.pt"]}, "must be a .safetensors file"),
    ({"data__visible": ["train.npy", "holdout.npy"]}, "a token stream is its own label"),
    ({"predict__sequence": None, "predict__inputs": "labels.npy",
      "scorer__command": "python score.py --outputs {outputs} --labels {data}/labels.npy"},
     "the scoring sandbox would be fed labels.npy, which a scorer command reads as labels"),
])
def test_the_evaluation_fields_are_checked(change, message):
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace("{", r"\{").replace("}", r"\}")):
        parse_spec(spec_text(**change))


def test_predict_may_be_a_bare_entry_point_and_test_inputs_need_not_be_visible():
    spec = parse_spec(spec_text(predict="model.py:predict", data__test={"inputs": "test_x.npy", "labels": "test_y.npy"}))
    assert spec.predict.function == "predict" and spec.predict.artifacts == ["model.safetensors"]
    assert spec.data.test.inputs not in spec.data.visible


# -- the scoring sandbox ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """The toy task's data, and an honest model trained on it."""
    root = tmp_path_factory.mktemp("toy-lm")
    files = toy_lm_files()
    for name, text in files.items():
        (root / name).write_text(text)
    data, out = root / "data", root / "out"
    out.mkdir()
    spec = parse_spec(yaml.safe_load(files["progenitor.yaml"]))
    run_prepare(spec, root, data)
    import subprocess
    import sys

    subprocess.run([sys.executable, "train.py", "--data", str(data), "--out", str(out)], cwd=root, check=True)
    return {"root": root, "data": data, "out": out, "spec": spec, "files": files}


def score_with(toy, tmp_path, model: str = None, split="holdout", **spec_change):
    files = dict(toy["files"])
    if model is not None:
        files["model.py"] = model
    spec = parse_spec(spec_text(**spec_change)) if spec_change else toy["spec"]
    archive = tree_archive(files)
    return score_model(spec, split, toy["root"], toy["data"], toy["out"], archive, tmp_path / "kept", ScoringSandbox())


def independent_bits(toy, split="holdout") -> float:
    """The same weights scored in this process, by other code: the reference figure."""
    import importlib.util

    st_spec = importlib.util.spec_from_file_location("toy_st", toy["root"] / "st.py")
    st = importlib.util.module_from_spec(st_spec)
    st_spec.loader.exec_module(st)
    table = st.load(toy["out"] / "model.safetensors")["bigram"].astype(np.float64)
    inputs, targets = causality.windows(np.load(toy["data"] / f"{split}.npy"), 16)
    logp = table - np.log(np.exp(table).sum(axis=1, keepdims=True))
    return float(-logp[inputs, targets].mean() / math.log(2))


@pytest.mark.loop
def test_an_honest_model_is_scored_as_an_independent_evaluation_scores_it(toy, tmp_path):
    result = score_with(toy, tmp_path)
    assert result.ok, result.reason
    assert result.metrics["bits"] == pytest.approx(independent_bits(toy), abs=1e-5)
    assert result.metrics["params"] == 64 and result.metrics["weights_bytes"] == 256
    assert result.metrics["eval_seconds"] > 0 and "eval_cpu_seconds" in result.metrics
    kept = np.load(tmp_path / "kept" / "holdout_outputs.npy")
    assert kept.ndim == 1 and (kept <= 0).all()  # what the scorer read: log-probabilities, normalised by us
    test = score_with(toy, tmp_path, split="test")
    assert test.ok and test.metrics["bits"] == pytest.approx(independent_bits(toy, "test"), abs=1e-5)


@pytest.mark.loop
def test_unnormalised_outputs_gain_nothing(toy, tmp_path):
    scaled = toy["files"]["model.py"] + "\n_p = predict\ndef predict(x, a):\n    return _p(x, a) * 1 + 40.0\n"
    assert score_with(toy, tmp_path, model=scaled).metrics["bits"] == pytest.approx(score_with(toy, tmp_path).metrics["bits"])


READS_AHEAD = '''
_p = predict
def predict(x, a):
    out = _p(x, a).copy()
    for p in range(x.shape[1] - 1):
        out[np.arange(len(x)), p, x[:, p + 1]] += 2.0   # peeks at the next token
    return out
'''


@pytest.mark.loop
def test_a_model_that_reads_ahead_fails_causality(toy, tmp_path):
    result = score_with(toy, tmp_path, model=toy["files"]["model.py"] + READS_AHEAD)
    assert not result.ok and result.reason.startswith("causality: ") and "reads ahead" in result.reason


@pytest.mark.loop
def test_last_position_mode_is_exact_without_probes(toy, tmp_path):
    cheat = score_with(toy, tmp_path, model=toy["files"]["model.py"] + READS_AHEAD,
                       predict__sequence={"context": 16, "positions": "last"})
    honest = score_with(toy, tmp_path, predict__sequence={"context": 16, "positions": "last"})
    assert cheat.ok and honest.ok
    assert cheat.metrics["bits"] == pytest.approx(honest.metrics["bits"])  # reading ahead finds nothing to read


@pytest.mark.loop
@pytest.mark.parametrize("model, reason", [
    ("def other(x, a):\n    return x\n", "has no function predict"),
    ("import numpy as np\ndef predict(x, a):\n    return np.zeros((len(x), 3))\n", "expected"),
    ("import numpy as np\ndef predict(x, a):\n    return np.full(x.shape + (8,), np.nan)\n", "NaN or infinite"),
    ("def predict(x, a):\n    raise RuntimeError('boom')\n", "predict raised on rows 0-31: RuntimeError: boom"),
    ("import time\ndef predict(x, a):\n    time.sleep(30)\n", "timed out after 3 s"),
    ("import numpy as np\ndef predict(x, a):\n    return np.zeros(x.shape + (4,))\n", "entries per position"),
    ("def predict(x, a):\n    return [['a'] * 16] * len(x)\n", "dtype"),
])
def test_a_broken_predict_fails_the_candidate_with_its_reason(toy, tmp_path, model, reason):
    # 3 s for the one that sleeps; 20 s for the others: room for the sandbox's interpreter and
    # numpy to start on a busy machine, so that each fails for its own reason.
    result = score_with(toy, tmp_path, model=model, predict__timeout=3 if "sleep" in model else 20)
    assert not result.ok and reason in result.reason, result.reason


@pytest.mark.loop
def test_a_missing_entry_file_and_missing_weights_are_reasons(toy, tmp_path):
    result = score_with(toy, tmp_path, predict__entry="nope.py:predict")
    assert not result.ok and "nope.py does not exist" in result.reason
    result = score_with(toy, tmp_path, predict__artifacts=["other.safetensors"])
    assert not result.ok and "wrote no other.safetensors" in result.reason


# -- the probe's windows ------------------------------------------------------------------------
def test_each_sandbox_holds_no_text_of_a_probed_window_after_its_splice():
    tokens = np.random.default_rng(0).integers(0, 50, 20_000)
    inputs, targets = causality.windows(tokens, 32)
    assert (inputs[:, 1:] == targets[:, :-1]).all() and targets[0, -1] == tokens[32] and inputs[1, 0] == tokens[33]
    feeds, probes = causality.plan_runs(inputs, 100, seed=3)
    assert len(feeds) == 2 and len(probes) == 100
    for feed in feeds:
        real = set(feed.origin[feed.origin >= 0].tolist())
        for row, origin in zip(feed.rows, feed.origin):
            if origin < 0:
                probe = probes[-1 - origin]
                assert probe.window not in real  # the real window runs in the other sandbox
                assert (row[: probe.j + 1] == inputs[probe.window, : probe.j + 1]).all()
                assert row[probe.j + 1] != inputs[probe.window, probe.j + 1]
    assert sorted(np.concatenate([f.origin[f.origin >= 0] for f in feeds]).tolist()) == list(range(len(inputs)))


def test_the_sandbox_gets_the_tensors_without_their_metadata(tmp_path):
    from safetensors.numpy import load_file, save_file

    from progenitor.evaluation.safetensors_header import read_header, tensors_only_copy

    save_file({"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, str(tmp_path / "a.safetensors"),
              metadata={"smuggled": "0.1,0.2,0.3"})
    tensors_only_copy(tmp_path / "a.safetensors", tmp_path / "b.safetensors")
    assert "__metadata__" not in read_header(tmp_path / "b.safetensors")[0]
    assert (load_file(str(tmp_path / "b.safetensors"))["w"] == np.arange(6).reshape(2, 3)).all()


@pytest.mark.loop
@pytest.mark.parametrize("change, sentence", [
    (lambda spec: spec.replace("  entry: model.py:predict\n", "").replace("predict:\n", "predict_typo:\n"),
     "unknown field 'predict_typo'"),
    (lambda spec: spec.replace("predict:\n  entry: model.py:predict\n  inputs: holdout.npy\n  batch_size: 32\n"
                               "  timeout: 60\n  sequence: {context: 16, probes: 64}\n", ""),
     "'evaluate: model' needs the candidate's predict entry point"),
    (lambda spec: spec.replace("python score.py --logprobs {outputs}\n  test",
                               "python score.py --logprobs {out}/model.safetensors\n  test"),
     "scorer.command names {out}, but with 'evaluate: model' no trusted command may open the candidate's outputs"),
])
def test_the_cli_refuses_a_bad_evaluation_in_one_sentence(tmp_path, change, sentence):
    import subprocess
    import sys

    from progenitor.testing import make_repo

    files = toy_lm_files()
    files["progenitor.yaml"] = change(files["progenitor.yaml"])
    repo = make_repo(tmp_path / "repo", files)
    proc = subprocess.run([sys.executable, "-m", "progenitor.cli", "run", str(repo)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and sentence in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_the_selection_luck_bound_counts_the_rows_the_harness_feeds(tmp_path):
    from progenitor.evaluation.honesty import holdout_size
    from progenitor.task.spec import load_spec

    digits = load_spec(Path(__file__).resolve().parents[2] / "examples" / "digits")
    np.save(tmp_path / "holdout_inputs.npy", np.zeros((7, 64), dtype=np.float32))
    assert holdout_size(digits, tmp_path) == 7
    np.save(tmp_path / "holdout.npy", np.zeros(100, dtype=np.int64))
    assert holdout_size(parse_spec(spec_text()), tmp_path) is None  # a token stream's positions are not examples
