"""The bundled charlm example, end to end: ``progenitor init --example charlm`` then a run ends
with the bits-per-character lines; and an architect's change to the model's *code* is scored
exactly as an independent evaluation of the same weights, with the candidate's own code,
scores it (not as the base commit's code would)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import progenitor
from progenitor.options import RunOptions
from progenitor.testing import scripted

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "progenitor.cli"]
LINES = re.compile(r"^(baseline|champion)( test)? bits_per_char: (\d+\.\d+)$", re.M)


@pytest.mark.timeout(3000)  # ~5 minutes on a quiet 2-core machine; 15+ on one shared with other suites
def test_init_then_run_ends_with_the_bits_per_char_lines(tmp_path):
    repo = tmp_path / "charlm"
    made = subprocess.run([*CLI, "init", "--example", "charlm", str(repo)], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    proc = subprocess.run([*CLI, "run", str(repo), "-g", "2", "-k", "2", "--sandbox", "process"], capture_output=True,
                          text=True, timeout=2900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    found = {(who, bool(test)): float(value) for who, test, value in LINES.findall(proc.stdout)}
    assert set(found) == {("baseline", False), ("champion", False), ("baseline", True), ("champion", True)}, proc.stdout
    assert 1.0 < found[("champion", False)] <= found[("baseline", False)] < 5.0


SQUARED_RELU = '''
class SquaredReLU(nn.Module):
    """relu(x) ** 2 (So et al., 2021, "Primer"): a sharper MLP non-linearity."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x).square()


'''

INDEPENDENT = textwrap.dedent('''
    import json, math, sys
    import numpy as np, torch
    sys.path.insert(0, sys.argv[1])
    import model
    from safetensors.torch import load_file
    net = model.GPT(model.model_config(model.read_config(sys.argv[1] + "/config.yaml")))
    state = load_file(sys.argv[2])
    state["head.weight"] = state["tok.weight"]
    net.load_state_dict(state)
    net.eval()
    tokens = np.load(sys.argv[3]).astype(np.int64)
    T = 128
    starts = np.arange(0, len(tokens) - T, T + 1)
    idx = starts[:, None] + np.arange(T)[None, :]
    x, y = torch.from_numpy(tokens[idx]), torch.from_numpy(tokens[idx + 1])
    with torch.no_grad():
        logits = torch.cat([net.logits(xb) for xb in x.split(64)]).double()
    logp = torch.log_softmax(logits, dim=-1).gather(-1, y[..., None])[..., 0]
    print(json.dumps(float(-logp.mean() / math.log(2))))
''')


def independent_bits(tree: Path, weights: Path, holdout: Path) -> float:
    proc = subprocess.run([sys.executable, "-c", INDEPENDENT, str(tree), str(weights), str(holdout)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.timeout(3000)
def test_an_architecture_change_is_scored_as_an_independent_evaluation_of_its_weights(tmp_path):
    repo = tmp_path / "charlm"
    subprocess.run([*CLI, "init", "--example", "charlm", str(repo)], check=True, capture_output=True)
    base_model = (repo / "model.py").read_text()
    changed = base_model.replace("\nclass RMSNorm(nn.Module):", SQUARED_RELU + "class RMSNorm(nn.Module):")
    changed = changed.replace("ACTIVATIONS[cfg.activation]()", "SquaredReLU()")
    assert changed.count("SquaredReLU") == 2
    script = [[{"hypothesis": "a squared-ReLU MLP", "edits": {"model.py": changed}}]]
    summary = progenitor.start_run(repo, RunOptions(generations=1, candidates=1, sandbox="process", executor="local"),
                                   architect=scripted(script))
    lineage = progenitor.get_lineage(summary.run_id, repo).model_dump(mode="json", by_alias=True)
    cand = next(c for c in lineage["candidates"] if c["gen"] == 1)
    assert cand["status"] == "scored", cand
    run = repo / ".progenitor" / "runs" / summary.run_id
    weights, holdout = run / "g1" / "c0" / "out" / "model.safetensors", run / "data" / "holdout.npy"
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "model.py").write_text(changed)
    (theirs / "config.yaml").write_text((repo / "config.yaml").read_text())
    measured = cand["metrics"]["bits_per_char"]
    assert measured == pytest.approx(independent_bits(theirs, weights, holdout), abs=1e-5)
    # The base commit's code would have scored the same weights as another model entirely.
    assert abs(measured - independent_bits(repo, weights, holdout)) > 0.05
