"""Human oversight end to end on the toy task: the gates stop the real loop, decisions come from
another shell, the API, or two callers at once, and the run goes on (or stays waiting)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import progenitor
from progenitor.errors import AlreadyDecided, UserError
from progenitor.lineage import Lineage, champion_ref
from progenitor.options import RunOptions
from progenitor.oversight.audit import audit_log
from progenitor.oversight.decide import default_person
from progenitor.oversight.store import DecisionStore
from progenitor.run.rundir import RunDir
from progenitor.testing import scripted
from tests.helpers.gating import OPTIONS, cli, toy_repo, wait_for
from tests.helpers.records import lineage_json, status_json


def _start_in_thread(repo: Path, **kwargs) -> tuple[threading.Thread, list[dict], dict]:
    events: list[dict] = []
    result: dict = {}

    def work() -> None:
        try:
            result["summary"] = progenitor.start_run(repo, RunOptions(**OPTIONS), on_event=events.append, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            result["error"] = exc

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread, events, result


def _decisions(repo: Path) -> list[dict]:
    return [e for e in audit_log(repo).entries() if e["actor"].startswith("human:")]


@pytest.mark.loop
def test_approver_run_waits_at_the_gate_until_a_decision_from_another_shell(tmp_path):
    repo = toy_repo(tmp_path / "repo", "approver")
    thread, events, result = _start_in_thread(repo)
    wait_for(lambda: any(e.type == "gate.waiting" for e in events), what="the promotion gate")
    run_id = events[0].run
    status = status_json(run_id, repo=repo)
    assert status["status"] == "waiting" and status["waiting"]["gate"] == "g1/promotion"
    assert status["waiting"]["description"].startswith("Promote g1/c")
    base = Lineage(repo).head()
    assert Lineage(repo).resolve(champion_ref(run_id)) == base, "nothing is promoted before the decision"
    listed = cli("pending", "--repo", str(repo)).stdout
    assert run_id in listed and "g1/promotion" in listed
    thread.join(1.0)
    assert thread.is_alive(), "the run waits, it does not end"

    cli("approve", run_id, "--repo", str(repo), "--comment", "looks right")
    thread.join(60)
    assert not thread.is_alive() and "error" not in result, result.get("error")
    summary = result["summary"]
    assert summary.status == "finished" and summary.champion_commit != base
    assert Lineage(repo).resolve(champion_ref(run_id)) == summary.champion_commit
    [decision] = _decisions(repo)
    gate = DecisionStore(repo).gate(run_id, "g1/promotion")
    assert decision["actor"] == f"human:{default_person()}" and decision["surface"] == "cli"
    assert decision["action"] == "approve" and decision["comment"] == "looks right"
    assert decision["payload_sha256"] == gate.payload_sha256 and decision["commit"] == summary.champion_commit
    promoted = [c for c in lineage_json(run_id, repo=repo)["candidates"] if c["decision"]["verdict"] == "promoted"]
    assert [c["decision"]["by"] for c in promoted] == [f"human:{default_person()}"]
    assert progenitor.verify_audit(repo).ok


@pytest.mark.loop
def test_two_decisions_for_one_gate_record_one_and_the_second_is_told_by_whom(tmp_path):
    repo = toy_repo(tmp_path / "repo", "approver")
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS), detach=True)
    assert summary.status == "waiting"
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def decide(who: str, what: str) -> None:
        barrier.wait()
        try:
            outcomes[who] = progenitor.decide(summary.run_id, what, by=who, comment="both at once", repo=repo)
        except AlreadyDecided as exc:
            outcomes[who] = exc

    threads = [threading.Thread(target=decide, args=(who, what)) for who, what in (("ann", "approve"), ("bob", "reject"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    won = [who for who, o in outcomes.items() if not isinstance(o, Exception)]
    lost = [o for o in outcomes.values() if isinstance(o, Exception)]
    assert len(won) == 1 and len(lost) == 1
    assert f"already decided: {outcomes[won[0]].type} by human:{won[0]}" in str(lost[0])
    assert len(_decisions(repo)) == 1 and _decisions(repo)[0]["actor"] == f"human:{won[0]}"
    # A third, from the CLI, is refused the same way, with exit code 2 and one sentence.
    late = cli("approve", summary.run_id, "--repo", str(repo), check=False)
    assert late.returncode == 2 and "already decided" in late.stderr and f"human:{won[0]}" in late.stderr
    assert len(_decisions(repo)) == 1


@pytest.mark.loop
def test_run_detach_exits_0_while_waiting_then_a_decision_and_resume_finish_it(tmp_path):
    repo = toy_repo(tmp_path / "repo", "approver")
    done = cli("run", str(repo), "--sandbox", "process", "--executor", "local", "--detach", "-q")
    assert "waiting at g1/promotion" in done.stdout and "progenitor approve" in done.stdout
    run_id = next((repo / ".progenitor" / "runs").iterdir()).name
    assert status_json(run_id, repo=repo)["status"] == "waiting"
    progenitor.decide(run_id, "approve", by="lab-script", repo=repo)
    resumed = cli("resume", run_id, "--repo", str(repo), "-q")
    assert "champion error:" in resumed.stdout
    status = status_json(run_id, repo=repo)
    assert status["status"] == "finished" and status["summary"]["champion_commit"] != Lineage(repo).head()
    assert [e["surface"] for e in _decisions(repo)] == ["api"]


@pytest.mark.loop
def test_ctrl_c_while_waiting_leaves_the_run_waiting_and_exits_0(tmp_path):
    repo = toy_repo(tmp_path / "repo", "approver")
    proc = subprocess.Popen([sys.executable, "-m", "progenitor.cli", "run", str(repo), "--sandbox", "process",
                             "--executor", "local"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        runs = repo / ".progenitor" / "runs"
        wait_for(lambda: runs.is_dir() and any(
            (RunDir(repo, p.name).meta.get("status") == "waiting") for p in runs.iterdir()), what="the gate")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "waiting at g1/promotion" in out and "progenitor resume" in out
    run_id = next(runs.iterdir()).name
    assert status_json(run_id, repo=repo)["status"] == "waiting"
    assert [p.gate for p in progenitor.pending(run_id, repo=repo)] == ["g1/promotion"]


@pytest.mark.loop
def test_request_changes_comment_reaches_the_next_proposal_and_is_recorded(tmp_path):
    repo = toy_repo(tmp_path / "repo", "approver", generations=2)
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS), detach=True)
    progenitor.decide(summary.run_id, "request-changes", by="carol", comment="stay close to w = 3", repo=repo)
    summary = progenitor.resume_run(summary.run_id, repo=repo, detach=True)
    cands = lineage_json(summary.run_id, repo=repo)["candidates"]
    first = [c for c in cands if c["gen"] == 1]
    asked = next(c for c in first if c["decision"]["by"] == "human:carol")
    assert asked["decision"]["verdict"] == "not promoted" and asked["decision"]["comment"] == "stay close to w = 3"
    assert all("stay close to w = 3" in c["proposal"]["hypothesis"] for c in cands if c["gen"] == 2)
    assert not any("stay close" in c["proposal"]["hypothesis"] for c in first)
    [entry] = _decisions(repo)
    assert entry["action"] == "request-changes" and entry["comment"] == "stay close to w = 3"


@pytest.mark.loop
def test_a_request_for_changes_or_a_rejection_needs_a_comment(tmp_path):
    repo = toy_repo(tmp_path / "repo", "approver")
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS), detach=True)
    for what in ("reject", "request-changes"):
        with pytest.raises(UserError, match="needs a comment"):
            progenitor.decide(summary.run_id, what, by="dan", repo=repo)
    assert cli("reject", summary.run_id, "--repo", str(repo), check=False).returncode == 2
    assert not _decisions(repo) and progenitor.pending(summary.run_id, repo=repo)


@pytest.mark.loop
def test_an_edit_before_costly_training_trains_the_edited_values_as_a_new_candidate(tmp_path):
    repo = toy_repo(tmp_path / "repo", "approver", oversight="approve_training_above: {cpu_hours: 0}")
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS), detach=True)
    [gate] = progenitor.pending(summary.run_id, repo=repo)
    assert gate.gate == "g1/training" and "approve_training_above.cpu_hours" in gate.description
    asked = [a["args"]["candidate"] for a in gate.request["action_requests"]]
    assert asked == ["g1/c0", "g1/c1"], "every candidate of the generation is asked about before it trains"
    with pytest.raises(UserError, match=r"w must lie in \[0, 6\]"):
        progenitor.decide(summary.run_id, "edit", by="eve", edits={"c0": {"w": 9}}, repo=repo)
    # From a shell, as the account whose token it is (never a typed name).
    from progenitor.oversight import accounts
    from progenitor.oversight.store import DecisionStore

    token = accounts.add(DecisionStore(repo), "eve", "approver", by="human:admin")
    done = cli("edit", summary.run_id, "--repo", str(repo), "--set", "c0.w=3.0", env={"PROGENITOR_TOKEN": token})
    assert "edit by human:eve recorded" in done.stdout
    summary = progenitor.resume_run(summary.run_id, repo=repo, detach=True)
    # The edited candidate trained and beat the champion: approver mode asks before promoting it.
    [gate] = progenitor.pending(summary.run_id, repo=repo)
    assert gate.gate == "g1/promotion"
    progenitor.decide(summary.run_id, "approve", by="eve", repo=repo)
    summary = progenitor.resume_run(summary.run_id, repo=repo)
    cands = {c["k"]: c for c in lineage_json(summary.run_id, repo=repo)["candidates"]}
    assert cands[0]["status"] == "rejected" and "edited by human:eve into g1/c2" in cands[0]["reason"]
    assert cands[1]["status"] == "scored", "the candidate nobody edited was approved and trained"
    edited = cands[2]
    assert edited["proposal"]["params"] == {"w": 3.0} and edited["proposal"]["author"] == "human:eve"
    assert edited["parent"] == cands[0]["parent"] and edited["metrics"]["error"] < 1e-6
    assert edited["decision"]["verdict"] == "promoted" and summary.champion_commit == edited["sha"]
    assert cands[0]["sha"] and Lineage(repo).resolve(cands[0]["ref"]) == cands[0]["sha"], "the original is kept"


@pytest.mark.loop
def test_auditor_run_never_blocks_and_a_revert_moves_the_champion_back_for_the_next_generation(tmp_path):
    repo = toy_repo(tmp_path / "repo", "auditor", generations=2)
    run: dict = {}

    def stop_after_first(event: dict) -> None:
        if event.type == "generation.end" and event.gen == 1:
            RunDir(repo, event.run).request_stop("the test looks at generation 1")

    summary = progenitor.start_run(repo, RunOptions(**OPTIONS), on_event=stop_after_first)
    run["id"] = summary.run_id
    assert summary.status == "stopped" and not progenitor.pending(summary.run_id, repo=repo)
    base = Lineage(repo).head()
    promoted = summary.champion_commit
    assert promoted != base, "the seeded search improves in generation 1 (and policy promotes it, nobody asked)"
    assert [e["actor"] for e in audit_log(repo).entries() if e["key"].endswith("/decision")] == ["policy:auditor"]

    from progenitor.oversight import accounts
    from progenitor.oversight.store import DecisionStore

    token = accounts.add(DecisionStore(repo), "auditor-amy", "admin", by="human:root")
    done = cli("revert", summary.run_id, "--repo", str(repo), "--gen", "1", "--comment", "overfits the holdout",
               "--token", token)
    assert f"champion back at {base[:10]}" in done.stdout
    assert Lineage(repo).resolve(champion_ref(summary.run_id)) == base
    note = Lineage(repo).read_note(promoted)
    assert note["decision"]["verdict"] == "reverted" and note["decision"]["by"] == "human:auditor-amy"
    assert note["decision"]["comment"] == "overfits the holdout"
    [entry] = [e for e in audit_log(repo).entries() if e["action"] == "revert"]
    assert entry["actor"] == "human:auditor-amy" and entry["commit"] == promoted and entry["gen"] == 1
    with pytest.raises(UserError, match="no promoted candidate to revert"):
        progenitor.revert(summary.run_id, 1, "again", by="amy", repo=repo)

    summary = progenitor.resume_run(summary.run_id, repo=repo)
    second = [c for c in lineage_json(summary.run_id, repo=repo)["candidates"] if c["gen"] == 2]
    assert second and all(c["parent"] == base for c in second), "generation 2 builds on the restored champion"
    assert summary.status == "finished" and progenitor.verify_audit(repo).ok


@pytest.mark.loop
def test_an_auto_run_whose_candidate_edits_the_constitution_waits_at_the_gate(tmp_path):
    repo = toy_repo(tmp_path / "repo", "auto", candidates=1, constitution=True)
    architect = scripted([[{"hypothesis": "loosen the rules", "params": {"w": 3.0},
                            "edits": {"constitution.yaml": "principles: [Anything goes.]\n"}}]])
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS), architect=architect, detach=True)
    assert summary.status == "waiting" and summary.waiting["gate"] == "g1/training"
    assert "constitution" in summary.waiting["description"]
    [cand] = lineage_json(summary.run_id, repo=repo)["candidates"]
    assert cand["status"] == "escalated" and {"constitution-change", "protected-path"} <= {f["rule"] for f in cand["findings"]}
    escalations = [e for e in audit_log(repo).entries() if e["action"] == "escalate"]
    assert escalations and escalations[0]["actor"] == "policy:auto"

    # A person accepts training it; its escalation still stands, so the promotion waits for a person too.
    progenitor.decide(summary.run_id, "approve", by="frank", repo=repo)
    summary = progenitor.resume_run(summary.run_id, repo=repo, architect=architect, detach=True)
    assert summary.status == "waiting" and summary.waiting["gate"] == "g1/promotion"
    progenitor.decide(summary.run_id, "reject", by="frank", comment="the constitution stays", repo=repo)
    summary = progenitor.resume_run(summary.run_id, repo=repo, architect=architect)
    [cand] = lineage_json(summary.run_id, repo=repo)["candidates"]
    assert cand["status"] == "scored" and cand["decision"]["verdict"] == "not promoted"
    assert cand["decision"]["by"] == "human:frank" and summary.champion_commit == Lineage(repo).head()


@pytest.mark.loop
def test_an_auditor_run_rejects_a_constitution_change_without_waiting(tmp_path):
    repo = toy_repo(tmp_path / "repo", "auditor", candidates=1, constitution=True)
    architect = scripted([[{"hypothesis": "loosen the rules", "edits": {"constitution.yaml": "principles: []\n"}}]])
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS), architect=architect)
    [cand] = lineage_json(summary.run_id, repo=repo)["candidates"]
    assert summary.status == "finished" and cand["status"] == "rejected"
    assert [e["action"] for e in audit_log(repo).entries()] == ["escalate"]


@pytest.mark.loop
def test_each_gate_records_its_question_once_however_often_the_run_resumes(tmp_path):
    repo = toy_repo(tmp_path / "repo", "approver")
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS), detach=True)
    for _ in range(2):
        summary = progenitor.resume_run(summary.run_id, repo=repo, detach=True)
        assert summary.status == "waiting"
    events = RunDir(repo, summary.run_id).events()
    assert not [e for e in events if e.type == "node.start" and e.node.endswith("_gate")]
    assert sum(e.type == "node.start" and e.node == "oversight" for e in events) == 1
    asks = [e for e in audit_log(repo).entries() if e["action"] == "ask"]
    [gate] = DecisionStore(repo).gates(summary.run_id)
    assert len(asks) == 1 and asks[0]["payload_sha256"] == gate.payload_sha256, "the question on record is the one shown"
    progenitor.decide(summary.run_id, "approve", by="gil", repo=repo)
    summary = progenitor.resume_run(summary.run_id, repo=repo)
    summary = progenitor.resume_run(summary.run_id, repo=repo)  # a finished run resumed again applies nothing again
    assert summary.status == "finished"
    assert len(_decisions(repo)) == 1
    assert sum(e.type == "gate.applied" for e in RunDir(repo, summary.run_id).events()) == 1
    assert DecisionStore(repo).decision(summary.run_id, "g1/promotion").applied


@pytest.mark.loop
def test_pending_json_is_the_langchain_hitl_request(tmp_path):
    repo = toy_repo(tmp_path / "repo", "approver")
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS), detach=True)
    [item] = json.loads(cli("pending", summary.run_id, "--repo", str(repo), "--json").stdout)
    request = item["request"]
    [action] = request["action_requests"]
    assert set(action) == {"name", "args", "description"} and action["name"] == "promote"
    assert {"candidate", "commit", "diff", "metrics", "champion_metrics", "findings", "cost"} <= set(action["args"])
    [config] = request["review_configs"]
    assert config["action_name"] == "promote"
    assert config["allowed_decisions"] == ["approve", "edit", "reject", "respond"]


@pytest.mark.loop
def test_a_revert_while_a_run_waits_keeps_its_next_promotion_off_the_reverted_line(tmp_path):
    repo = toy_repo(tmp_path / "repo", "approver", generations=2, oversight="approve_training_above: {cpu_hours: 0}")
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS), detach=True)
    for gate in ("g1/training", "g1/promotion"):
        [waiting] = progenitor.pending(summary.run_id, repo=repo)
        assert waiting.gate == gate
        progenitor.decide(summary.run_id, "approve", by="jo", repo=repo)
        summary = progenitor.resume_run(summary.run_id, repo=repo, detach=True)
    promoted = Lineage(repo).resolve(champion_ref(summary.run_id))
    assert promoted != Lineage(repo).head()
    [waiting] = progenitor.pending(summary.run_id, repo=repo)
    assert waiting.gate == "g2/training", "generation 2 was proposed on g1's champion and waits"
    progenitor.revert(summary.run_id, 1, "g1 is suspect", by="kim", repo=repo)
    progenitor.decide(summary.run_id, "approve", by="jo", repo=repo)
    summary = progenitor.resume_run(summary.run_id, repo=repo)
    second = [c for c in lineage_json(summary.run_id, repo=repo)["candidates"] if c["gen"] == 2]
    assert second and all(c["parent"] == promoted for c in second)
    assert not any(c["decision"]["verdict"] == "promoted" for c in second), "nothing built on a reverted champion"
    assert Lineage(repo).resolve(champion_ref(summary.run_id)) == Lineage(repo).head()
    assert summary.status == "finished"


@pytest.mark.parametrize("mode, action, asks", [
    ("approver", "approve", True), ("approver", "escalate", True), ("approver", "keep", False),
    ("auto", "approve", False), ("auto", "escalate", True), ("auditor", "escalate", False),
    ("auditor", "approve", False), ("auto", "none", False),
])
def test_who_decides_in_each_mode(mode, action, asks):
    from progenitor.oversight.policy import PolicyDecision, needs_person

    assert needs_person(mode, PolicyDecision(action=action, actor=f"policy:{mode}", reason="")) is asks


def test_growth_rules_escalate_past_their_factors_and_the_cost_estimate_asks_above_its_cap():
    from progenitor.oversight.policy import estimate_training, growth_findings, training_above
    from progenitor.task.spec import load_spec_text
    from progenitor.testing import toy_task_files

    text = toy_task_files(oversight="mode: approver, max_param_growth: 2, max_cost_growth: 3, "
                                    "approve_training_above: {cpu_hours: 0.0005}")["progenitor.yaml"]
    spec = load_spec_text(text)
    found = growth_findings(spec, {"params": 25}, {"params": 10}, cost=40.0, champion_cost=10.0)
    assert [f.rule for f in found] == ["param-growth", "cost-growth"] and all(f.escalate for f in found)
    assert "2.5x" in found[0].message and "4x" in found[1].message
    assert growth_findings(spec, {"params": 15}, {"params": 10}, cost=20.0, champion_cost=10.0) == []
    assert growth_findings(spec, {}, {"params": 10}, cost=None, champion_cost=10.0) == []
    cheap = estimate_training(spec, 2, past_seconds=[0.5, 1.0])
    assert cheap.seconds_each == 1.0 and cheap.cpu_hours == pytest.approx(2 / 3600)
    assert training_above(spec, cheap) and "approve_training_above.cpu_hours" in training_above(spec, cheap)[0]
    assert not training_above(spec, estimate_training(spec, 0, [1.0]))
    assert estimate_training(spec, 1, []).seconds_each == spec.train.timeout, "no training yet: the timeout bounds it"


@pytest.mark.parametrize("field, value, says", [
    ("max_param_growth", "0.5", "greater than 1"),
    ("mode", "spectator", "allowed: 'auto', 'approver' or 'auditor'"),
    ("approve_training_above", "{}", "at least one of"),
    ("poll_seconds", "0", "greater than 0"),
])
def test_oversight_fields_are_checked_like_every_field(field, value, says):
    from progenitor.errors import SpecError
    from progenitor.task.spec import load_spec_text
    from progenitor.testing import toy_task_files

    text = toy_task_files(oversight=f"{field}: {value}")["progenitor.yaml"]
    with pytest.raises(SpecError, match=rf"oversight\.{field}") as err:
        load_spec_text(text)
    assert says in str(err.value)


@pytest.mark.loop
def test_looking_for_decisions_in_a_repo_without_runs_changes_nothing(tmp_path):
    repo = toy_repo(tmp_path / "repo", "approver")
    exclude = (repo / ".git" / "info" / "exclude").read_text() if (repo / ".git" / "info" / "exclude").exists() else None
    assert progenitor.pending(repo=repo) == [] and "nothing waits" in cli("pending", "--repo", str(repo)).stdout
    assert not (repo / ".progenitor").exists()
    after = (repo / ".git" / "info" / "exclude").read_text() if (repo / ".git" / "info" / "exclude").exists() else None
    assert after == exclude
