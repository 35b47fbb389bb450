"""Two people for the dangerous ones: ``oversight.approvals`` sets how many different approvers a
kind of gate needs; the gate (and the run waiting at it) stays open until they all approved, the
same person cannot count twice, and any rejection closes it."""

from __future__ import annotations

import threading

import pytest

import progenitor
from progenitor.errors import AlreadyDecided
from progenitor.options import RunOptions
from progenitor.oversight.audit import audit_log
from progenitor.oversight.store import DecisionStore
from progenitor.run.rundir import find_run
from progenitor.testing import make_repo, scripted, toy_task_files
from tests.helpers.gating import OPTIONS, toy_repo, wait_for

CLOSER = [[{"hypothesis": "closer to 3", "params": {"w": 2.9}}]]


@pytest.mark.loop
def test_a_gate_that_needs_two_approvals_waits_for_the_second_and_the_run_goes_on_after_it(tmp_path):
    repo = toy_repo(tmp_path / "repo", "approver", candidates=1, oversight="approvals: {promotion: 2}")
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(summary=progenitor.start_run(
        repo, RunOptions(**OPTIONS), architect=scripted(CLOSER))), daemon=True)
    thread.start()
    [gate] = wait_for(lambda: progenitor.pending(repo=repo), timeout=120, what="the gate")
    assert gate.needed == 2 and gate.request["gate"]["approvals"] == 2
    first = progenitor.decide(gate.run, "approve", by="alice", repo=repo, comment="fine by me")
    assert not first.final and first.approvers == ["human:alice"] and first.needed == 2
    with pytest.raises(AlreadyDecided, match="human:alice approved g1/promotion .* already; .* waits for 1 more"):
        progenitor.decide(gate.run, "approve", by="alice", repo=repo)
    thread.join(1.0)
    assert thread.is_alive() and find_run(gate.run, repo).meta["status"] == "waiting", "one approval is not enough"
    [still] = progenitor.pending(repo=repo)
    assert still.approvals == ["human:alice"]
    second = progenitor.decide(gate.run, "approve", by="bob", repo=repo)
    assert second.final and second.approvers == ["human:alice", "human:bob"]
    thread.join(120)
    summary = result["summary"]
    assert summary.status == "finished" and summary.champion_commit == gate.request["action_requests"][0]["args"]["commit"]
    entries = [e for e in audit_log(repo).entries() if e["actor"].startswith("human:")]
    assert [(e["actor"], e["key"].rsplit("/", 2)[-2:]) for e in entries] == [
        ("human:alice", ["approval", "human:alice"]), ("human:bob", ["promotion", "decision"])]
    assert entries[0]["approvals"] == "1 of 2" and entries[1]["approvers"] == ["human:alice", "human:bob"]
    record = progenitor.get_lineage(gate.run, repo=repo).candidate(1, 0)
    assert record.decision.verdict == "promoted" and record.decision.by == "human:alice and human:bob"


@pytest.mark.loop
def test_any_rejection_closes_a_gate_that_needed_more_approvals(tmp_path):
    repo = toy_repo(tmp_path / "repo", "approver", candidates=1, oversight="approvals: {promotion: 3}")
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS), detach=True, architect=scripted(CLOSER))
    progenitor.decide(summary.run_id, "approve", by="alice", repo=repo)
    progenitor.decide(summary.run_id, "approve", by="bob", repo=repo)
    closed = progenitor.decide(summary.run_id, "reject", by="carol", repo=repo, comment="overfits")
    assert closed.final and closed.type == "reject"
    with pytest.raises(AlreadyDecided, match="already decided: reject by human:carol"):
        progenitor.decide(summary.run_id, "approve", by="dan", repo=repo)
    summary = progenitor.resume_run(summary.run_id, repo=repo)
    assert summary.status == "finished" and summary.champion == summary.baseline


@pytest.mark.loop
def test_an_escalation_can_need_more_people_than_an_ordinary_promotion(tmp_path):
    files = toy_task_files(generations=1, candidates=1, oversight=(
        "mode: auto, poll_seconds: 0.05, perfect: 0, approvals: {promotion: 1, capability-jump: 2}"))
    repo = make_repo(tmp_path / "repo", files)
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS), detach=True,
                                   architect=scripted([[{"hypothesis": "exact", "params": {"w": 3.0}}]]))
    [gate] = progenitor.pending(summary.run_id, repo=repo)
    assert gate.needed == 2 and gate.request["gate"]["escalated"] is True
    assert not progenitor.decide(summary.run_id, "approve", by="alice", repo=repo).final
    assert DecisionStore(repo).decision(summary.run_id, gate.gate) is None


def test_approvals_are_checked_like_every_field(tmp_path):
    from progenitor.errors import SpecError
    from progenitor.task.spec import load_spec_text

    for fields, says in (("approvals: {capabilty-jump: 2}", "unknown approvals key 'capabilty-jump'"),
                         ("approvals: {promotion: 0}", "between 1 and 10")):
        with pytest.raises(SpecError, match=says):
            load_spec_text(toy_task_files(oversight=fields)["progenitor.yaml"])
