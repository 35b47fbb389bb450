"""``ModelRepo`` and ``Run``: a lab's handles on a model repo and its runs, every answer typed."""

from __future__ import annotations

import pytest

import progenitor
from progenitor.candidate import Candidate, Champion
from progenitor.compute import register_executor
from progenitor.errors import UserError
from progenitor.lineage.records import RunLineage
from progenitor.options import RunOptions
from progenitor.run import events
from progenitor.run.status import RunStatus
from progenitor.testing import FakeExecutor, make_repo, toy_task_files

pytestmark = pytest.mark.loop  # runs the loop or a sandbox end to end: `make test` runs it, `make test-fast` does not

FAST = RunOptions(executor="fake", sandbox="process")


@pytest.fixture(autouse=True)
def fake_executor():
    register_executor("fake", FakeExecutor)


def test_a_run_in_this_process_reads_back_typed(tmp_path):
    repo = progenitor.ModelRepo(make_repo(tmp_path / "repo", toy_task_files(generations=2, candidates=2)))
    run = repo.start(FAST)
    assert run.summary.status == "finished" and run.summary.tried == 4
    status = run.status()
    assert isinstance(status, RunStatus) and status.status == "finished" and status.generation == 2
    assert status.metric == "error" and status.champion_value == run.summary.champion
    lineage = run.lineage()
    assert isinstance(lineage, RunLineage) and all(isinstance(c, Candidate) for c in lineage.candidates)
    assert len(lineage.candidates) == 4 and lineage.champion == run.summary.champion_commit
    champion = run.champion()
    assert isinstance(champion, Champion) and champion.sha == run.summary.champion_commit
    assert champion.metrics["error"] == run.summary.champion
    assert [r.id for r in repo.runs()] == [run.id]
    assert isinstance(run.events()[0], events.RunStart)


def test_a_run_in_the_background_is_followed_live_and_waited_for(tmp_path):
    repo = progenitor.ModelRepo(make_repo(tmp_path / "repo", toy_task_files(generations=1, candidates=2)))
    run = repo.start_in_background(FAST)
    kinds = [e.type for e in run.follow(poll=0.02)]
    summary = run.wait(timeout=120)
    assert kinds[0] == "run.start" and kinds[-1] == "run.end" and kinds.count("score") == 2
    assert summary.status == "finished" and run.summary is summary


def test_a_run_waiting_at_a_gate_is_decided_through_its_handle(tmp_path):
    files = toy_task_files(generations=1, candidates=2, oversight="mode: approver, poll_seconds: 0.05")
    repo = progenitor.ModelRepo(make_repo(tmp_path / "repo", files))
    run = repo.start(FAST, detach=True)
    assert run.summary.status == "waiting" and run.status().waiting["gate"] == "g1/promotion"
    [gate] = run.pending()
    recorded = run.decide("approve", by="alice", comment="looks right")
    assert recorded.by == "human:alice" and recorded.gate == gate.gate
    summary = run.resume()
    assert summary.status == "finished" and run.champion().sha == summary.champion_commit != run.lineage().base


def test_an_unknown_run_and_an_unstarted_wait_are_one_sentence(tmp_path):
    repo = progenitor.ModelRepo(make_repo(tmp_path / "repo", toy_task_files()))
    with pytest.raises(UserError, match="no run 'r20990101-0000'"):
        repo.run("r20990101-0000")
    run = repo.start(FAST)
    with pytest.raises(UserError, match="not started in the background"):
        repo.run(run.id).wait()
