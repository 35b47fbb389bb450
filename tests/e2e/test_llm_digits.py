"""The acceptance run: on the bundled digits example, a scripted language model (a real HTTP
server, real litellm) proposes a residual block, writes it into model.py, reviews it; the
candidate trains for real in the process sandbox and is scored by the trusted scorer, and
``lineage --json`` shows its hypothesis, review, metrics and LLM cost (slow: trains PyTorch)."""

from __future__ import annotations

import json

import git
import pytest
from click.testing import CliRunner

import progenitor
from progenitor.cli import cli
from progenitor.lineage import IDENTITY
from progenitor.lineage.scaffold import init_example
from progenitor.options import RunOptions
from tests.helpers.llm_helpers import KEY_VAR, draft, edit, lessons, llm_section, proposals, review

pytestmark = pytest.mark.slow  # whole runs, end to end: CI runs them, `make test-fast` does not

HYPOTHESIS = "a residual hidden block lets the net go one layer deeper without training worse"

BLOCK = '''class Residual(nn.Module):
    """x + f(x): the input skips over the block, so a deeper net trains as easily as a shallow one."""

    def __init__(self, width: int, activation: str, dropout: float) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Linear(width, width), ACTIVATIONS[activation](), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class MLP(nn.Module):'''

OLD_LAYERS = '''        layers: list[nn.Module] = []
        width = N_INPUTS
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), ACTIVATIONS[activation](), nn.Dropout(dropout)]
            width = hidden
        layers.append(nn.Linear(width, N_CLASSES))'''

NEW_LAYERS = '''        layers: list[nn.Module] = [nn.Linear(N_INPUTS, hidden), ACTIVATIONS[activation](), nn.Dropout(dropout)]
        for _ in range(depth):
            layers.append(Residual(hidden, activation, dropout))
        layers.append(nn.Linear(hidden, N_CLASSES))'''


@pytest.mark.slow
def test_a_scripted_model_writes_a_residual_block_into_digits_that_is_reviewed_trained_and_scored(
        tmp_path, llm_server, monkeypatch):
    monkeypatch.setenv(KEY_VAR, "sk-digits-acceptance")
    repo = init_example("digits", tmp_path / "digits")
    spec = repo / "progenitor.yaml"
    spec.write_text(spec.read_text().replace(
        "agents: {brief: program.md}\n", llm_section(llm_server, agents="{architect: llm, coder: llm, reviewers: [llm], brief: program.md}")))
    git.Repo(repo).git.commit("-qam", "digits: LLM agents", env=IDENTITY)
    llm_server.queue("arch", proposals(draft(HYPOTHESIS, "model.py: add a Residual(nn.Module) block x + f(x) and build "
                                                       "the MLP as an input layer, depth residual blocks, an output layer")),
                     lessons("confirmed"))  # the architect's look back at the generation
    llm_server.queue("coder", edit("model.py", "class MLP(nn.Module):", BLOCK) + "\n" + edit("model.py", OLD_LAYERS, NEW_LAYERS))
    llm_server.queue("rev", review({"principle": 3, "severity": "info", "file": "model.py",
                                    "message": "the change is the residual block its hypothesis describes"}))

    summary = progenitor.start_run(repo, RunOptions(executor="local", sandbox="process", generations=1, candidates=1))
    assert summary.status == "finished" and not llm_server.unexpected
    result = CliRunner().invoke(cli, ["lineage", summary.run_id, "--repo", str(repo), "--json"])
    assert result.exit_code == 0, result.output
    (cand,) = json.loads(result.output)["candidates"]
    assert cand["status"] == "scored", cand["reason"]
    assert cand["proposal"]["hypothesis"] == HYPOTHESIS and cand["proposal"]["author"] == "llm"
    model = git.Repo(repo).git.show(f"{cand['sha']}:model.py")
    assert "class Residual(nn.Module)" in model and "layers.append(Residual(hidden, activation, dropout))" in model
    changed = git.Repo(repo).git.diff("--name-only", cand["parent"], cand["sha"]).split()
    assert changed == ["model.py"], "a change to the model's code, not a config value"
    assert [(f["rule"], f["severity"]) for f in cand["findings"]] == [("llm-principle-3", "info")]
    assert 0.8 < cand["metrics"]["accuracy"] <= 1.0 and cand["metrics"]["params"] > 0
    assert cand["train"]["self_reported"]["params"] == cand["metrics"]["params"] == 3466
    cost = cand["cost"]
    assert cost["dollars"] > 0 and cost["llm_calls"] == 2 and cost["prompt_tokens"] > 0 and cost["cpu_seconds"] > 0
    prompt = llm_server.requests_for("arch")[0].prompt
    assert "# The research brief" in prompt and "class MLP(nn.Module)" in prompt and "def expected_calibration_error" not in prompt
