"""A team server: the decision store, the audit log and LangGraph's checkpoints in a real
PostgreSQL (the test cluster ``.ci/postgres-setup.sh`` starts; each test gets a database of its own).

Two machines are simulated as two clones of one model repo, each with its own run index
(``PROGENITOR_HOME``) and its own processes, sharing nothing but the PostgreSQL URL: a run on
each, one inbox holding both, a decision made on one that resumes the run on the other."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import progenitor
from progenitor.errors import AlreadyDecided
from progenitor.options import RunOptions
from progenitor.oversight import accounts
from progenitor.oversight.store import DecisionStore
from progenitor.testing import scripted
from tests.helpers.gating import OPTIONS, toy_repo, wait_for

pytestmark = pytest.mark.postgres

CLOSER = [[{"hypothesis": "closer to 3", "params": {"w": 2.9}}]]


def _request(run: str, gate: str = "g1/promotion") -> dict:
    return {"action_requests": [{"name": "promote", "args": {"candidate": "g1/c0", "commit": "c" * 40}, "description": "d"}],
            "review_configs": [{"action_name": "promote", "allowed_decisions": ["approve", "reject"], "args_schema": {}}],
            "gate": {"id": gate, "kind": "promotion", "run": run, "gen": 1, "description": "promote?", "approvals": 2}}


def test_the_store_on_postgresql_keeps_gates_decisions_approvals_reverts_and_accounts(tmp_path, postgres):
    store = DecisionStore(tmp_path, postgres)
    assert store.shared and "postgresql://" in store.where and not (tmp_path / ".progenitor").exists()
    gate = store.open_gate("r1", _request("r1"), {"diffs": {"g1/c0": {"text": "+x", "cut": False}}}, tmp_path)
    assert store.open_gate("r1", _request("r1")).opened == gate.opened, "opening again is the same gate"
    assert [g.gate for g in store.pending()] == ["g1/promotion"] and gate.details["diffs"]["g1/c0"]["text"] == "+x"
    first = store.record("r1", "g1/promotion", "approve", {"decisions": [{"type": "approve"}]}, "human:a", needed=2)
    assert not first.final and store.pending()
    final = store.record("r1", "g1/promotion", "approve", {"decisions": [{"type": "approve"}]}, "human:b", needed=2)
    assert final.final and final.approvers == ["human:a", "human:b"] and not store.pending()
    with pytest.raises(AlreadyDecided):
        store.record("r1", "g1/promotion", "reject", {}, "human:c")
    store.mark_applied("r1", "g1/promotion")
    assert store.decision("r1", "g1/promotion").applied
    store.add_revert("r1", 1, "human:a", "why", ["c" * 40], {"sha": "b" * 40})
    with pytest.raises(AlreadyDecided):
        store.add_revert("r1", 1, "human:a", "again", [], {})
    token = accounts.add(store, "alice", "approver", by="human:root")
    assert accounts.authenticate(DecisionStore(tmp_path / "elsewhere", postgres), token).name == "alice"
    assert store.claim_run("r9", tmp_path, "toy") and not store.claim_run("r9", tmp_path / "other", "toy")
    before = store.fingerprint()
    store.open_gate("r2", _request("r2"))
    assert store.fingerprint() != before


def test_of_two_decisions_sent_at_once_from_two_machines_one_is_recorded(tmp_path, postgres):
    DecisionStore(tmp_path, postgres).open_gate("r1", {**_request("r1"), "gate": {**_request("r1")["gate"], "approvals": 1}})
    outcomes: list[str] = []

    def decide(who: str, kind: str) -> None:
        try:
            DecisionStore(tmp_path / who, postgres).record("r1", "g1/promotion", kind, {}, f"human:{who}")
            outcomes.append(f"recorded {who}")
        except AlreadyDecided as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=decide, args=(who, kind)) for who, kind in (("a", "approve"), ("b", "reject"))]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sum(o.startswith("recorded") for o in outcomes) == 1 and sum("already decided" in o for o in outcomes) == 1


def test_many_processes_append_to_one_audit_chain_and_apply_migrations_once(tmp_path, postgres):
    code = ("import sys; from pathlib import Path; from progenitor.oversight.store import DecisionStore; "
            "log = DecisionStore(Path(sys.argv[1]), sys.argv[2]).audit_log(); "
            "[log.append(key=f'{sys.argv[3]}/{n}', action='keep', actor='policy:auto', run='r1', gen=n, commit=None) "
            "for n in range(10)]")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), postgres, f"p{i}"],
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}) for i in range(3)]
    assert all(p.wait(120) == 0 for p in procs)
    log = DecisionStore(tmp_path, postgres).audit_log()
    result = log.verify()
    assert result.ok and result.entries == 30 and [e["seq"] for e in log.entries()] == list(range(30))


def _machine(tmp_path: Path, origin: Path, name: str) -> tuple[Path, dict]:
    """A clone of the model repo and the environment of the machine it lives on."""
    repo = tmp_path / name
    subprocess.run(["git", "clone", "-q", str(origin), str(repo)], check=True)
    home = tmp_path / f"{name}-home"
    home.mkdir()
    return repo, {**os.environ, "PROGENITOR_HOME": str(home), "PYTHONUNBUFFERED": "1"}


def _run(repo: Path, env: dict, store: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "progenitor.cli", "run", str(repo), "--sandbox", "process",
                             "--executor", "local", "--store", store], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def test_two_machines_runs_share_one_inbox_and_a_decision_on_one_resumes_the_run_on_the_other(tmp_path, postgres):
    origin = toy_repo(tmp_path / "origin", "approver")  # the seeded search improves on the baseline: a gate
    repo_a, env_a = _machine(tmp_path, origin, "machine-a")
    repo_b, env_b = _machine(tmp_path, origin, "machine-b")
    run_a, run_b = _run(repo_a, env_a, postgres), _run(repo_b, env_b, postgres)
    try:
        def both() -> list:
            for proc in (run_a, run_b):
                assert proc.poll() is None, f"a run ended early: {proc.stdout.read()}{proc.stderr.read()}"
            found = DecisionStore(repo_a, postgres).pending()
            return found if len(found) == 2 else []

        gates = wait_for(both, timeout=240, what="both machines' runs to wait at their gates")
        ids = {g.run: g.repo for g in gates}
        id_b = next(r for r, where in ids.items() if where == str(repo_b))
        id_a = next(r for r, where in ids.items() if where == str(repo_a))
        # One inbox: machine A's shell and page list both runs, B's with where it lives.
        listed = subprocess.run([sys.executable, "-m", "progenitor.cli", "pending", "--repo", str(repo_a),
                                 "--store", postgres], capture_output=True, text=True, env=env_a, check=True).stdout
        assert id_a in listed and id_b in listed
        from fastapi.testclient import TestClient

        from progenitor.ui import create_app

        app = create_app(repo_a, port=8765, store=postgres, owner="ann")
        page = TestClient(app, base_url="http://127.0.0.1:8765", client=("127.0.0.1", 5000))
        page.get(f"/?token={app.state.site.auth.owner_token}")
        inbox = page.get("/inbox").text
        assert f'data-run="{id_a}"' in inbox and f'data-run="{id_b}"' in inbox and "w: 2.9" not in inbox
        assert inbox.count('class="diff"') == 2, "B's diff shown on A from the store, A has not B's commits"
        # A decision on machine A's page resumes the run on machine B.
        html = re.search(rf'<section class="gate" id="gate-{id_b}-g1-promotion".*?</section>', inbox, re.S).group(0)
        csrf = re.search(r'name="csrf" value="([^"]*)"', html).group(1)
        done = page.post("/decide", data={"run": id_b, "gate": "g1/promotion", "action": "approve", "csrf": csrf},
                         headers={"Origin": "http://127.0.0.1:8765"})
        assert f"g1/promotion of run {id_b}: approve by human:ann recorded" in done.text
        assert run_b.wait(180) == 0, run_b.stderr.read()
        assert run_a.poll() is None, "A's own run still waits for its own decision"
        # And one from machine B's shell resumes A's.
        subprocess.run([sys.executable, "-m", "progenitor.cli", "reject", id_a, "--repo", str(repo_b), "--store",
                        postgres, "--comment", "not now"], env=env_b, check=True, capture_output=True)
        assert run_a.wait(180) == 0, run_a.stderr.read()
    finally:
        for proc in (run_a, run_b):
            if proc.poll() is None:
                proc.kill()
    # One audit log, one set of checkpoints: in the store, none on either machine's disk.
    log = DecisionStore(repo_a, postgres).audit_log(repo_a)
    humans = [(e["run"], e["actor"], e["action"]) for e in log.entries() if e["actor"].startswith("human:")]
    assert (id_b, "human:ann", "approve") in humans and (id_a, f"human:{_os_user()}", "reject") in humans
    assert log.verify().ok
    for repo in (repo_a, repo_b):
        assert not (repo / ".progenitor" / "checkpoints.sqlite").exists()
        assert not (repo / ".progenitor" / "decisions.sqlite").exists()
    assert progenitor.run_status(id_b, repo=repo_b).status == "finished"


def _os_user() -> str:
    from progenitor.oversight.decide import default_person

    return default_person()


def test_a_run_detached_on_one_machine_resumes_from_the_checkpoints_in_the_store(tmp_path, postgres):
    repo = toy_repo(tmp_path / "repo", "approver", candidates=1)
    options = RunOptions(**OPTIONS, store=postgres)
    summary = progenitor.start_run(repo, options, detach=True, architect=scripted(CLOSER))
    assert summary.status == "waiting" and not (repo / ".progenitor" / "checkpoints.sqlite").exists()
    saved = progenitor.run_status(summary.run_id, repo=repo)
    assert saved.status == "waiting"
    progenitor.decide(summary.run_id, "approve", by="pat", repo=repo)  # the run knows its store
    done = progenitor.resume_run(summary.run_id, repo=repo, architect=scripted(CLOSER))
    assert done.status == "finished" and done.champion < done.baseline
    import psycopg

    with psycopg.connect(postgres) as conn:
        threads = {r[0] for r in conn.execute("SELECT DISTINCT thread_id FROM checkpoints").fetchall()}
    assert threads == {summary.run_id}


def test_an_unreachable_store_is_one_sentence(tmp_path):
    repo = toy_repo(tmp_path / "repo", "approver")
    done = subprocess.run([sys.executable, "-m", "progenitor.cli", "pending", "--repo", str(repo), "--store",
                           "postgresql://nobody@127.0.0.1:1/none"], capture_output=True, text=True)
    lines = [x for x in done.stderr.splitlines() if x.strip()]
    assert done.returncode == 2 and len(lines) == 1 and "cannot reach the store postgresql://nobody@127.0.0.1:1/none" \
        in lines[0]


def test_a_postgres_test_with_no_server_fails_rather_than_skips(tmp_path):
    """A machine without the cluster shows a failure, not a quiet skip (port 1 answers nothing)."""
    env = {**os.environ, "PROGENITOR_TEST_POSTGRES": "postgresql://progenitor@127.0.0.1:1/postgres"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-m", "postgres",
                           "-k", "keeps_gates_decisions", __file__], capture_output=True, text=True, env=env,
                          cwd=Path(__file__).parents[2], timeout=300)
    assert done.returncode == 1, done.stdout[-2000:]
    assert "1 failed" in done.stdout and "skipped" not in done.stdout
    assert "PostgreSQL is required here but postgresql://progenitor@127.0.0.1:1/postgres does not answer" in done.stdout
