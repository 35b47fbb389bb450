"""A whole run with ``evaluate: model`` (the numpy toy language model, process sandbox): a
candidate whose predict crashes fails with its reason, the run goes on, and its failure is
looked up, not scored again."""

from __future__ import annotations

import shutil

import pytest

import progenitor
from progenitor.candidate.keys import CandidateKey
from progenitor.lineage import Lineage
from progenitor.options import RunOptions
from progenitor.oversight.audit import AuditLog
from progenitor.run.rundir import RunDir
from progenitor.task.spec import load_spec
from progenitor.testing import make_repo, scripted, toy_lm_files
from progenitor.workflows.nodes import score_dir
from progenitor.workflows.state import RunContext

pytestmark = pytest.mark.loop  # runs the loop or a sandbox end to end: `make test` runs it, `make test-fast` does not

CRASHES = "def predict(inputs, artifacts):\n    raise RuntimeError('no model here')\n"


def test_a_crashing_predict_fails_its_candidate_and_is_not_scored_again(tmp_path):
    repo = make_repo(tmp_path / "repo", toy_lm_files(generations=1, candidates=2))
    script = [[{"hypothesis": "crashes", "edits": {"model.py": CRASHES}, "params": {"alpha": 1.0}},
               {"hypothesis": "honest", "params": {"alpha": 2.0}}]]
    summary = progenitor.start_run(repo, RunOptions(sandbox="process", executor="local"), architect=scripted(script))
    lineage = progenitor.get_lineage(summary.run_id, repo).model_dump(mode="json", by_alias=True)
    cands = {c["k"]: c for c in lineage["candidates"] if c["gen"] == 1}
    assert cands[0]["status"] == "failed"
    assert "predict raised on rows 0-31: RuntimeError: no model here" in cands[0]["reason"]
    assert cands[1]["status"] == "scored" and cands[1]["metrics"]["params"] == 64
    assert summary.champion_commit == cands[1]["sha"]
    assert {"eval_seconds", "eval_cpu_seconds", "weights_bytes"} <= set(cands[1]["metrics"])
    assert "test_bits" in summary.model_dump_json()

    run = RunDir(repo, summary.run_id)
    # Scored again, it would now fail for want of weights (train.keep_outputs' default, champion,
    # already removed this failed candidate's outputs once its generation was decided).
    shutil.rmtree(run.outputs(1, 0), ignore_errors=True)
    assert not run.outputs(1, 0).exists()
    ctx = RunContext(run=run, lineage=Lineage(repo), spec=load_spec(repo), options=RunOptions(executor="local"),
                     backend="process", backend_options={}, audit=AuditLog(tmp_path / "audit.jsonl"))
    again = score_dir(ctx, CandidateKey(run=summary.run_id, gen=1, k=0))
    assert not again.ok and "no model here" in again.reason
