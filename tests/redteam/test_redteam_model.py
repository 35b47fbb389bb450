"""The red team against ``evaluate: model`` (see ``attacks_model.py``): every attack and an honest
control in one generation of the toy language model, through the real loop, on each backend."""

from __future__ import annotations

import math
import os
import secrets
import time
from pathlib import Path

import numpy as np
import pytest

from progenitor.api import get_lineage, start_run
from progenitor.evaluation.causality import windows
from progenitor.options import RunOptions
from progenitor.testing import make_repo, scripted, toy_lm_files
from tests.redteam.attacks_model import CONTROL_ALPHA, MODEL_ATTACKS, ModelAttack
from tests.redteam.harness import BACKENDS, SILENT_CONSTITUTION, Listener, require_backend, task_image

pytestmark = pytest.mark.slow

RUN_ID = f"r20260102-{secrets.token_hex(2)}"
_RUNS: dict[str, dict] = {}
NOISE = 1e-4
"""Bits per token within which two scorings of the same model agree (float32 rounding of shifted logits)."""


def _run(backend: str, root: Path, token: str) -> dict:
    """One generation: the control (k0), then every attack (k1...), on ``backend``."""
    image = task_image(root) if backend == "docker" else None
    listener = Listener()
    files = toy_lm_files(generations=1, candidates=len(MODEL_ATTACKS) + 1)
    files["progenitor.yaml"] = files["progenitor.yaml"].replace(
        "sandbox: {backend: process}", f"sandbox: {{backend: process, image: {image}}}" if image else
        "sandbox: {backend: process}") + "safety: {constitution: constitution.yaml, block_at: critical, bandit: false}\n"
    # Shifted outputs round differently in float32: a gain of that size is noise, not a gain.
    files["progenitor.yaml"] = files["progenitor.yaml"].replace("goal: minimize}", f"goal: minimize, min_delta: {NOISE}}}")
    files["constitution.yaml"] = SILENT_CONSTITUTION
    files["requirements.txt"] = "numpy\npyyaml\n"
    repo = make_repo(root / "repo", files)
    run_dir = repo / ".progenitor" / "runs" / RUN_ID
    marker = root / "escaped.txt"
    tokens = {"__LABELS__": str((run_dir / "data" / "holdout.npy").resolve()), "__PORT__": str(listener.port),
              "__MARKER__": str(marker), "__TOKEN__": token}
    proposals = [{"hypothesis": "the honest control", "params": {"alpha": CONTROL_ALPHA}}]
    for k, attack in enumerate(MODEL_ATTACKS, start=1):
        local = {**tokens, "__OUTPUTS__": str((run_dir / f"g1/c{k}/out").resolve())}
        edits = {path: _render(text, local) for path, text in attack.edits.items()}
        proposals.append({"hypothesis": f"red team: {attack.what}", "params": {"alpha": attack.alpha}, "edits": edits})
    try:
        start_run(repo, RunOptions(generations=1, sandbox=backend, executor="local"), architect=scripted([proposals]),
                  run_id=RUN_ID, detach=True)
    finally:
        listener.close()
    lineage = get_lineage(RUN_ID, repo).model_dump(mode="json", by_alias=True)
    return {"repo": repo, "records": {c["k"]: c for c in lineage["candidates"] if c["gen"] == 1},
            "champion": lineage.get("champion"), "connections": listener.connections, "marker": marker,
            "data": run_dir / "data"}


def _render(text: str, tokens: dict[str, str]) -> str:
    for token, value in tokens.items():
        text = text.replace(token, value)
    return text


@pytest.fixture(scope="module")
def model_run(tmp_path_factory, request):
    token = secrets.token_hex(8)

    def get(backend: str) -> dict:
        require_backend(backend, request)
        if backend not in _RUNS:
            _RUNS[backend] = _run(backend, tmp_path_factory.mktemp(f"redteam-model-{backend}"), token)
            _RUNS[backend]["token"] = token
        return _RUNS[backend]

    return get


def honest_bits(data: Path, alpha: float) -> float:
    """What an independent evaluation measures for the honest bigram with ``alpha``."""
    train = np.load(data / "train.npy")
    counts = np.zeros((8, 8))
    np.add.at(counts, (train[:-1], train[1:]), 1.0)
    table = np.log(counts + alpha).astype(np.float32).astype(np.float64)
    logp = table - np.log(np.exp(table).sum(axis=1, keepdims=True))
    inputs, targets = windows(np.load(data / "holdout.npy"), 16)
    return float(-logp[inputs, targets].mean() / math.log(2))


def _carriers(token: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if token.encode() in f.read():
                    found.append(pid)
        except OSError:
            continue
    return found


@pytest.mark.parametrize("layer", ["runtime"])
@pytest.mark.parametrize("attack", [pytest.param(a, id=a.name) for a in MODEL_ATTACKS])
@pytest.mark.parametrize("backend", BACKENDS)
def test_model_attack(model_run, backend, layer, attack: ModelAttack):
    run = model_run(backend)
    record = run["records"][MODEL_ATTACKS.index(attack) + 1]
    assert run["champion"] != record.get("sha"), "an attack became champion"
    if attack.outcome == "honest":
        assert record["status"] == "scored", record
        assert record["metrics"]["bits"] == pytest.approx(honest_bits(run["data"], attack.alpha), abs=NOISE)
    else:
        assert record["status"] == "failed" and attack.reason in record["reason"], record
    if attack.name == "escape":
        assert run["connections"] == 0, "predict reached the host's loopback"
        assert not run["marker"].exists(), "a process predict started wrote a file on the host"
        deadline = time.monotonic() + 10
        while _carriers(run["token"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _carriers(run["token"]), "a process predict started outlived its sandbox"
    if attack.name == "tiny-params":
        assert (record.get("metrics") or {}).get("params", 0) != 1 or record["status"] == "failed"


@pytest.mark.parametrize("backend", BACKENDS)
def test_model_attacks_leave_the_control_alone(model_run, backend):
    run = model_run(backend)
    control = run["records"][0]
    assert control["status"] == "scored", control
    assert control["metrics"]["bits"] == pytest.approx(honest_bits(run["data"], CONTROL_ALPHA), abs=2e-6)
    assert control["metrics"]["params"] == 64
    assert run["champion"] == control["sha"]
