"""The bundled digits example, end to end with real processes: prepare, train, score.

The commands come from the example's own progenitor.yaml (with ``python`` replaced by this
interpreter), so the test also proves that the spec's commands work as written. Training
sees a data directory holding only the spec's visible files, as a sandbox would give it; the
model is scored as ``evaluate: model`` scores it: its predict function in the scoring sandbox
(process backend), the checked outputs read by score.py.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from progenitor.task.spec import load_spec

pytestmark = pytest.mark.slow  # whole runs, end to end: CI runs them, `make test-fast` does not

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits"
SUMMARY_LINE = re.compile(r"^(\w+): (\S+)$")


def summary(stdout: str) -> dict[str, float]:
    """The ``key: value`` lines of a script's output, as numbers."""
    found = (SUMMARY_LINE.match(line.strip()) for line in stdout.splitlines())
    return {m[1]: float(m[2]) for m in found if m}


def run(command: str, cwd: Path, **fill: Path) -> subprocess.CompletedProcess:
    argv = shlex.split(command.format(**{k: str(v) for k, v in fill.items()}))
    assert argv[0] == "python"
    argv[0] = sys.executable
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300)


def timed(timings: dict, step: str, command: str, cwd: Path, **fill: Path) -> subprocess.CompletedProcess:
    start = time.perf_counter()
    proc = run(command, cwd, **fill)
    timings[step] = round(time.perf_counter() - start, 2)
    assert proc.returncode == 0, f"{step} failed:\n{proc.stderr[-2000:]}"
    return proc


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> dict:
    """Run prepare, train (baseline config) and score once; the tests below inspect the results."""
    root = tmp_path_factory.mktemp("digits")
    spec = load_spec(EXAMPLE)
    tree = root / "tree"  # the candidate's own copy of the tree, as the sandbox gets it
    shutil.copytree(EXAMPLE, tree, ignore=shutil.ignore_patterns("__pycache__"))
    data, visible, out = root / "data", root / "visible", root / "out"
    timings: dict[str, float] = {}

    timed(timings, "prepare", spec.data.prepare, EXAMPLE, data=data)
    visible.mkdir()
    for name in spec.data.visible:
        shutil.copy(data / name, visible / name)
    train = timed(timings, "train", spec.train.command, tree, data=visible, out=out)
    began = time.perf_counter()
    scored = sandbox_score(spec, data, out, root / "scored")
    timings["score"] = round(time.perf_counter() - began, 2)
    assert scored.ok, scored.reason
    print(f"\ndigits example timings (s): {timings}")
    return {
        "spec": spec, "tree": tree, "data": data, "visible": visible, "out": out, "timings": timings,
        "train": summary(train.stdout), "score": scored.metrics, "root": root,
    }


def sandbox_score(spec, data: Path, out: Path, keep: Path, split: str = "holdout"):
    from progenitor.compute.base import tree_archive
    from progenitor.evaluation.model_eval import ScoringSandbox, score_model

    files = {p.name: p.read_bytes() for p in EXAMPLE.iterdir() if p.is_file()}
    return score_model(spec, split, EXAMPLE, data, out, tree_archive(files), keep, ScoringSandbox(),
                       scores=keep.parent / f"{keep.name}-scores")


@pytest.mark.slow
def test_prepare_writes_fixed_split(pipeline):
    data = pipeline["data"]
    with np.load(data / "train.npz", allow_pickle=False) as train:
        x, y = train["x"], train["y"]
    inputs = np.load(data / "holdout_inputs.npy", allow_pickle=False)
    labels = np.load(data / "holdout_labels.npy", allow_pickle=False)
    test_inputs = np.load(data / "test_inputs.npy", allow_pickle=False)
    test_labels = np.load(data / "test_labels.npy", allow_pickle=False)
    assert x.shape == (1079, 64) and y.shape == (1079,)
    assert inputs.shape == (359, 64) and labels.shape == (359,)
    assert test_inputs.shape == (359, 64) and test_labels.shape == (359,)
    assert x.dtype == inputs.dtype == test_inputs.dtype == np.float32 and labels.dtype == test_labels.dtype == np.int64
    assert set(np.unique(labels)) == set(np.unique(test_labels)) == set(range(10))
    # three disjoint splits: no image is in two of them
    rows = {r.tobytes() for r in x} | {r.tobytes() for r in inputs} | {r.tobytes() for r in test_inputs}
    assert len(rows) >= 0.98 * (len(x) + len(inputs) + len(test_inputs))  # the digits hold a few duplicate images


@pytest.mark.slow
def test_train_writes_outputs_and_summary(pipeline):
    import torch
    from safetensors.torch import load_file

    out, summ = pipeline["out"], pipeline["train"]
    state = load_file(str(out / "model.safetensors"))
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert sum(v.numel() for v in state.values()) == summ["params"]
    assert not (out / "predictions.npy").exists()  # the holdout is the scoring sandbox's business
    probs = np.load(pipeline["root"] / "scored" / "holdout_outputs.npy", allow_pickle=False)
    assert probs.shape == (359, 10) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    progress = [json.loads(line) for line in (out / "progress.jsonl").read_text().splitlines()]
    assert [p["step"] for p in progress] == list(range(1, len(progress) + 1))
    assert all(0.0 <= p["val_accuracy"] <= 1.0 for p in progress)
    assert {"val_accuracy", "accuracy", "params", "train_seconds"} <= set(summ)
    assert summ["accuracy"] == summ["val_accuracy"] == pytest.approx(progress[-1]["val_accuracy"], abs=1e-4)


@pytest.mark.slow
def test_score_measures_the_baseline(pipeline):
    scored, summ = pipeline["score"], pipeline["train"]
    assert set(scored) == {"accuracy", "log_loss", "ece", "params", "weights_bytes", "eval_seconds", "eval_cpu_seconds"}
    assert 0.90 <= scored["accuracy"] <= 0.99, scored
    assert 0.0 <= scored["ece"] <= 0.2 and scored["log_loss"] > 0
    assert scored["params"] == summ["params"]  # counted from the safetensors header, by progenitor
    # The self-reported estimate stays within the spec's allowed gap of the sealed measurement.
    assert abs(scored["accuracy"] - summ["accuracy"]) <= pipeline["spec"].scorer.self_report_gap
    # {scores}: each image's 1/0, whose mean is the accuracy (what the paired test before a promotion reads)
    right = np.load(pipeline["root"] / "scored-scores" / "per_example.npy", allow_pickle=False)
    assert right.shape == (359,) and set(np.unique(right)) <= {0.0, 1.0}
    assert right.mean() == pytest.approx(scored["accuracy"])


@pytest.mark.slow
def test_training_is_deterministic(pipeline, tmp_path):
    spec, first = pipeline["spec"], pipeline["out"]
    run_again = run(spec.train.command, pipeline["tree"], data=pipeline["visible"], out=tmp_path / "again")
    assert run_again.returncode == 0, run_again.stderr[-2000:]
    again = (tmp_path / "again" / "model.safetensors").read_bytes()
    assert again == (first / "model.safetensors").read_bytes()


def bad_predictions(kind: str, labels: np.ndarray) -> np.ndarray:
    good = np.full((len(labels), 10), 0.1, dtype=np.float32)
    if kind == "nan":
        good[3, 4] = np.nan
        return good
    if kind == "shape":
        return good[:-1]
    if kind == "logits":
        return good - 1.0
    return np.array([{"x": 1}] * len(labels), dtype=object)  # "pickle": an object array


@pytest.mark.slow
@pytest.mark.parametrize("kind, message", [
    ("nan", "NaN"), ("shape", "shape"), ("logits", "negative"), ("pickle", "not a plain .npy"),
])
def test_scorer_rejects_bad_predictions(pipeline, tmp_path, kind, message):
    labels = np.load(pipeline["data"] / "holdout_labels.npy")
    path = tmp_path / "predictions.npy"
    np.save(path, bad_predictions(kind, labels), allow_pickle=True)
    proc = subprocess.run(
        [sys.executable, "score.py", "--outputs", str(path), "--labels", str(pipeline["data"] / "holdout_labels.npy")],
        cwd=EXAMPLE, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode != 0
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""


@pytest.mark.slow
def test_a_tiny_saved_file_beside_the_real_weights_cannot_pass_the_params_guard(pipeline, tmp_path):
    """The digits attack of issue 17: a 563,722-parameter model that saves a 100-value file. The
    scoring sandbox gets only the counted file, so the big model cannot be used at all."""
    import torch
    from safetensors.torch import save_file

    out = tmp_path / "out"
    out.mkdir()
    save_file({"net.0.weight": torch.zeros(100)}, str(out / "model.safetensors"))
    shutil.copy(pipeline["out"] / "model.safetensors", out / "real.safetensors")  # not an artifact: never seen
    scored = sandbox_score(pipeline["spec"], pipeline["data"], out, tmp_path / "scored")
    assert not scored.ok and "predict raised" in scored.reason


@pytest.mark.slow
def test_the_readme_commands_work_as_written(tmp_path):
    """The example README's commands, run as a newcomer would (``~`` pointed at a temp dir),
    all but the last, ``progenitor run``: its ``check`` before it trains the baseline once."""
    text = (EXAMPLE / "README.md").read_text()
    block = text.split("## Run progenitor on it", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert all(c.startswith("progenitor ") and "examples/digits" not in c for c in commands), commands
    assert commands[-2:] == ["progenitor check ~/digits", "progenitor run ~/digits"]
    for command in commands[:-1]:
        argv = [sys.executable, "-m", "progenitor.cli", *shlex.split(command.replace("~", str(tmp_path)))[1:]]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{command}:\n{proc.stdout}{proc.stderr}"
    assert "scorer: printed accuracy" in proc.stdout and "all checks passed" in proc.stdout
