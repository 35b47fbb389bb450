"""The loop end to end on the toy task, through the public API and the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import git
import pytest
from click.testing import CliRunner

import progenitor
from progenitor.cli import cli
from progenitor.options import RunOptions
from progenitor.run.ledger import Ledger
from progenitor.run.rundir import RunDir
from progenitor.testing import curve_train, make_repo, scripted, toy_task_files
from tests.helpers.records import lineage_json, status_json
from tests.helpers.waiting import run_then_kill, wait_for

SLEEPY_TRAIN = toy_task_files()["train.py"].replace(
    'w = float(config["w"])', 'w = float(config["w"])\nimport time; time.sleep(float(config.get("sleep", 0)))'
)


def _train_events(run: RunDir) -> tuple[dict, dict]:
    starts: dict = {}
    ends: dict = {}
    for e in run.events():
        key = (getattr(e, "gen", None), getattr(e, "k", None))
        if e.type == "train.start":
            starts[key] = starts.get(key, 0) + 1
        elif e.type == "train.end":
            ends[key] = ends.get(key, 0) + 1
    return starts, ends


@pytest.mark.loop
def test_search_run_improves_and_records_everything(toy_repo):
    summary = progenitor.start_run(toy_repo, RunOptions(generations=2, candidates=2, sandbox="process", executor="local"))
    assert summary.status == "finished" and summary.stop_reason == "budget: 2 generations done"
    assert summary.tried == 4
    # The baseline (w = 1) is far from the answer (w = 3): a seeded search finds a better w,
    # and that candidate, the best of its generation, is the one promoted.
    assert summary.champion < summary.baseline and summary.champion_commit != git.Repo(toy_repo).head.commit.hexsha
    repo = git.Repo(toy_repo)
    refs = {r.path for r in repo.refs}
    run = summary.run_id
    for gen in (1, 2):
        for k in (0, 1):
            assert f"refs/progenitor/{run}/g{gen}/c{k}" in refs
    assert f"refs/progenitor/{run}/champion" in refs
    # every candidate carries its record as a git note, readable with plain git
    log = repo.git.log("--notes=progenitor", "--all", "--format=%H%n%N")
    for gen in (1, 2):
        for k in (0, 1):
            sha = repo.commit(f"refs/progenitor/{run}/g{gen}/c{k}").hexsha
            note = json.loads(repo.git.notes("--ref", "refs/notes/progenitor", "show", sha))
            assert note["status"] == "scored" and "error" in note["metrics"]
            assert note["proposal"]["hypothesis"] and note["decision"]["verdict"]
            assert sha in log
    # the user's branch did not move and the working tree is clean
    assert repo.active_branch.name == "main" and repo.head.commit.message.strip() == "baseline"
    assert not repo.is_dirty(untracked_files=True)
    lineage = lineage_json(run, repo=toy_repo)
    assert len(lineage["candidates"]) == 4 and lineage["champion"] == summary.champion_commit
    promoted = [c for c in lineage["candidates"] if c["decision"]["verdict"] == "promoted"]
    assert promoted and promoted[-1]["sha"] == summary.champion_commit
    for winner in promoted:
        rivals = [c["metrics"]["error"] for c in lineage["candidates"] if c["gen"] == winner["gen"]]
        assert winner["metrics"]["error"] == min(rivals)
    status = status_json(run, repo=toy_repo)
    assert status["status"] == "finished"
    # idle slot-seconds: the run's and each generation's, in the summary, its events and status
    assert summary.mode == "generations" and summary.slots and summary.slots >= 1
    assert 0 <= summary.idle_slot_seconds <= summary.slots * summary.seconds + 0.1
    ends = [e for e in RunDir(toy_repo, run).events() if e.type == "generation.end"]
    assert [e.gen for e in ends] == [1, 2]
    for e in ends:
        assert e.wall_seconds > 0 and 0 <= e.idle_slot_seconds <= summary.slots * e.wall_seconds + 0.01
    assert status["slots"] == summary.slots and status["mode"] == "generations"
    assert {int(g) for g in status["idle_by_generation"]} == {1, 2}
    assert status["idle_slot_seconds"] is not None


@pytest.mark.slow
def test_protected_nan_and_timeout_candidates(tmp_path):
    # 10 s: room for an honest toy candidate on a busy machine; the sleeper sleeps 600.
    files = toy_task_files(generations=1, timeout=10)
    files["train.py"] = SLEEPY_TRAIN
    files["config.yaml"] += "sleep: 0\n"
    repo = make_repo(tmp_path / "repo", files)
    nan_train = files["train.py"].replace("w * x)", "w * x * float('nan'))")
    script = [[
        {"hypothesis": "make the scorer kinder", "edits": {"score.py": "print('error: 0')\n"}},
        {"hypothesis": "nan", "edits": {"train.py": nan_train}},
        {"hypothesis": "sleep", "params": {"w": 3.0, "sleep": 600}},
        {"hypothesis": "honest", "params": {"w": 2.9}},
    ]]
    summary = progenitor.start_run(repo, RunOptions(sandbox="process", executor="local"), architect=scripted(script))
    cands = {c["k"]: c for c in lineage_json(summary.run_id, repo=repo)["candidates"]}
    assert cands[0]["status"] == "rejected" and "protected path 'score.py'" in cands[0]["reason"]
    assert cands[1]["status"] == "failed" and "NaN" in cands[1]["reason"]
    assert cands[2]["status"] == "timeout" and "timeout" in cands[2]["reason"]
    assert cands[3]["status"] == "scored" and cands[3]["decision"]["verdict"] == "promoted"
    starts, _ = _train_events(RunDir(repo, summary.run_id))
    assert (1, 0) not in starts, "a rejected candidate never runs"
    assert summary.counts == {"rejected": 1, "failed": 1, "timeout": 1, "scored": 1}


@pytest.mark.slow
def test_sigkill_while_training_then_resume_trains_nothing_twice(tmp_path):
    files = toy_task_files(generations=2, candidates=2)
    files["train.py"] = SLEEPY_TRAIN
    files["config.yaml"] += "sleep: 1.5\n"
    repo = make_repo(tmp_path / "repo", files)
    def second_training_under_way(run) -> bool:
        starts, ends = _train_events(run)
        return bool(ends.get((1, 0)) and starts.get((1, 1)))  # g1/c0 finished, g1/c1 training now

    run = run_then_kill(repo, ["--sandbox", "process", "--executor", "local", "--parallel", "1", "-q"],
                        second_training_under_way, 300, "the second candidate's training")
    assert not (run.candidate(1, 1) / "train.json").exists()
    summary = progenitor.resume_run(run.run_id, repo=repo)
    assert summary.status == "finished" and summary.generations == 2
    starts, ends = _train_events(run)
    assert all(n == 1 for n in ends.values()), f"a candidate finished training twice: {ends}"
    assert set(ends) == {(0, 0), (1, 0), (1, 1), (2, 0), (2, 1)}
    assert starts[(1, 0)] == 1 and starts[(0, 0)] == 1, "finished work was redone"
    assert starts[(1, 1)] == 2, "the killed training was started again"
    # The ledger counts every training that started, the one the kill interrupted too.
    ledger = Ledger(run.ledger)
    assert ledger.totals().attempts == sum(starts.values()) == 6
    assert [a.status for a in ledger.candidate(f"{run.run_id}/g1/c1").attempts] == ["interrupted", "ok"]
    # And status names the objective with its own values, the champion's too.
    status = progenitor.run_status(run.run_id, repo=repo)
    assert (status.metric, status.champion_value) == ("error", summary.champion)
    assert status.baseline_value == status.baseline.metrics["error"]
    # the resumed run continued the same Optuna study: one trial per candidate plus the baseline
    import optuna

    study = optuna.load_study(study_name=run.run_id, storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(run.path / "study.log"))))
    assert len(study.trials) == 5 and all(t.state.is_finished() for t in study.trials)
    values = [t.params["w"] for t in study.trials]
    assert len(set(values)) == len(values), f"the resumed search repeated a proposal: {values}"


def _drop_scorer(text: str) -> str:
    return text[: text.index("scorer:")] + text[text.index("protected:"):]


@pytest.mark.parametrize("break_it,field", [
    (lambda t: t.replace("timeout: 30", "timeout: soon"), "train.timeout"),
    (lambda t: t.replace("name: toy", "name: toy\nnmae: typo"), "nmae"),
    (_drop_scorer, "scorer"),
    (lambda t: t + "search: {mode: asynchronous}\n", "search.mode"),  # 'async' is the name
])
def test_cli_bad_spec_exits_2_with_one_sentence(tmp_path, break_it, field):
    files = toy_task_files()
    files["progenitor.yaml"] = break_it(files["progenitor.yaml"])
    repo = make_repo(tmp_path / "repo", files)
    result = CliRunner().invoke(cli, ["run", str(repo)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and f"'{field}'" in lines[0] and "progenitor.yaml" in lines[0]
    assert "Traceback" not in result.output


def test_cli_not_a_repo_and_unknown_run(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["run", str(tmp_path)])
    assert result.exit_code == 2 and "not the root of a git repository" in result.output
    result = runner.invoke(cli, ["resume", "r20990101-dead", "--repo", str(tmp_path)])
    assert result.exit_code == 2 and "no run 'r20990101-dead'" in result.output


@pytest.mark.loop
def test_cli_run_status_lineage_json(toy_repo):
    runner = CliRunner()
    result = runner.invoke(cli, ["run", str(toy_repo), "-g", "1", "-k", "2", "--sandbox", "process", "--executor", "local", "-q"])
    assert result.exit_code == 0, result.output
    assert "baseline error:" in result.output and "champion error:" in result.output
    run_id = next((toy_repo / ".progenitor" / "runs").iterdir()).name
    status = json.loads(runner.invoke(cli, ["status", run_id, "--repo", str(toy_repo), "--json"]).output)
    assert status["status"] == "finished" and status["summary"]["tried"] == 2
    lineage = json.loads(runner.invoke(cli, ["lineage", run_id, "--repo", str(toy_repo), "--json"]).output)
    assert [c["k"] for c in lineage["candidates"]] == [0, 1]
    assert all("findings" in c for c in lineage["candidates"])
    assert runner.invoke(cli, ["audit", "verify", "--repo", str(toy_repo)]).exit_code == 0


def test_importing_the_cli_loads_nothing_heavy():
    code = ("import sys, time; t=time.time(); import progenitor.cli; "
            "heavy=[m for m in ('langgraph','ray','docker','torch','litellm','optuna','git') if m in sys.modules]; "
            "print(heavy, time.time()-t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("[]"), out


@pytest.mark.loop
def test_budget_cap_stops_with_reason_and_ledger_adds_up(tmp_path):
    files = toy_task_files(generations=5, candidates=2)
    files["progenitor.yaml"] = files["progenitor.yaml"].replace(
        "budget: {generations: 5, candidates: 2}", "budget: {generations: 5, candidates: 2, cpu_hours: 0.00001}")
    repo = make_repo(tmp_path / "repo", files)
    summary = progenitor.start_run(repo, RunOptions(sandbox="process", executor="local"))
    assert summary.status == "finished" and summary.generations == 1, "the cap ends the run after its generation"
    assert summary.stop_reason.startswith("budget reached:") and "CPU-hours" in summary.stop_reason
    ledger = summary.ledger
    records = lineage_json(summary.run_id, repo=repo)["candidates"]
    baseline = json.loads((repo / ".progenitor" / "runs" / summary.run_id / "g0" / "c0" / "train.json").read_text())
    trained = [c["train"]["cpu_seconds"] for c in records] + [baseline["cpu_seconds"]]
    assert ledger["attempts"] == 3 and ledger["cpu_seconds"] == pytest.approx(sum(trained), abs=0.01)
    assert status_json(summary.run_id, repo=repo)["ledger"]["cpu_seconds"] == pytest.approx(ledger["cpu_seconds"])


@pytest.mark.slow
def test_stop_from_another_thread_leaves_run_resumable(tmp_path):
    import threading

    files = toy_task_files(generations=2, candidates=2)
    files["train.py"] = SLEEPY_TRAIN
    files["config.yaml"] += "sleep: 2\n"
    repo = make_repo(tmp_path / "repo", files)
    events: list[dict] = []
    result: dict = {}

    def run() -> None:
        result["summary"] = progenitor.start_run(repo, RunOptions(sandbox="process", executor="local"),
                                                 on_event=events.append)

    worker = threading.Thread(target=run)
    worker.start()
    assert wait_for(lambda: any(e.type == "train.start" and getattr(e, "gen", None) == 1 for e in events), 300), \
        "never reached generation 1"
    progenitor.stop_run(events[0].run, repo=repo)
    worker.join(300)
    assert not worker.is_alive(), "the stopped run did not return"
    summary = result["summary"]
    assert summary.status == "stopped"
    assert any(e.type == "train.cancelled" for e in events)
    resumed = progenitor.resume_run(summary.run_id, repo=repo)
    assert resumed.status == "finished" and resumed.generations == 2
    _, ends = _train_events(RunDir(repo, summary.run_id))
    assert all(n == 1 for n in ends.values()), ends


CURVE_TRAIN = curve_train(30, 0.2)
"""The toy model with an honest progress curve of 30 steps, 6 s long."""


@pytest.mark.slow
def test_candidate_behind_the_champion_is_pruned(tmp_path):
    files = toy_task_files(generations=1, candidates=2, w=2.5)
    files["train.py"] = CURVE_TRAIN
    files["progenitor.yaml"] = files["progenitor.yaml"].replace(
        "  resources: {cpus: 1, memory: 1g}",
        "  resources: {cpus: 1, memory: 1g}\n  early_stop: {metric: error, goal: minimize, rule: median, warmup_steps: 3}")
    repo = make_repo(tmp_path / "repo", files)
    script = [[{"hypothesis": "far off", "params": {"w": 6.0}}, {"hypothesis": "closer", "params": {"w": 2.9}}]]
    summary = progenitor.start_run(repo, RunOptions(sandbox="process", executor="local"), architect=scripted(script))
    cands = {c["k"]: c for c in lineage_json(summary.run_id, repo=repo)["candidates"]}
    assert cands[0]["status"] == "pruned", cands[0].get("reason")
    assert cands[0]["train"]["pruned"]["step"] < 30, "stopped before the end of its 30 steps"
    assert cands[1]["status"] == "scored" and cands[1]["decision"]["verdict"] == "promoted"


SIZED_SCORE = toy_task_files()["score.py"].replace(
    'print(f"params: 1")',
    'import os; print("params: " + open(os.path.join(os.path.dirname(args.predictions), "size.txt")).read())')
SIZED_TRAIN = toy_task_files()["train.py"].replace(
    'print(f"error:', 'open(os.path.join(args.out, "size.txt"), "w").write(str(config.get("size", 1)))\nprint(f"error:')


@pytest.mark.loop
def test_better_candidate_that_breaks_a_guard_is_not_promoted(tmp_path):
    files = toy_task_files(generations=1)
    files["score.py"], files["train.py"] = SIZED_SCORE, SIZED_TRAIN
    files["config.yaml"] += "size: 1\n"
    repo = make_repo(tmp_path / "repo", files)
    script = [[{"hypothesis": "best error, but huge", "params": {"w": 3.0, "size": 500}},
               {"hypothesis": "good error, small", "params": {"w": 2.5, "size": 2}}]]
    summary = progenitor.start_run(repo, RunOptions(sandbox="process", executor="local"), architect=scripted(script))
    cands = {c["k"]: c for c in lineage_json(summary.run_id, repo=repo)["candidates"]}
    assert cands[0]["metrics"]["error"] < cands[1]["metrics"]["error"]
    assert cands[0]["decision"]["verdict"] == "not promoted" and "guard" in cands[0]["decision"]["reason"]
    assert any(f["rule"] == "guard" for f in cands[0]["findings"])
    assert cands[1]["decision"]["verdict"] == "promoted"
    assert summary.champion_commit == cands[1]["sha"]


def test_task_that_breaks_its_own_constitution_is_refused_at_start(tmp_path):
    files = toy_task_files()
    files["constitution.yaml"] = "required_guards: {metrics: [calibration_error], severity: high}\n"
    files["progenitor.yaml"] += "safety: {constitution: constitution.yaml}\n"
    repo = make_repo(tmp_path / "repo", files)
    result = CliRunner().invoke(cli, ["run", str(repo), "--executor", "local", "--sandbox", "process"])
    assert result.exit_code == 2, result.output
    assert "breaks its own constitution" in result.output and "calibration_error" in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not (repo / ".progenitor" / "runs").exists(), "refused before any run was made, let alone trained"


@pytest.mark.loop
def test_a_git_case_variant_fails_its_candidate_and_neither_the_run_nor_a_resume_crashes(tmp_path):
    repo = make_repo(tmp_path / "repo", toy_task_files(generations=1, candidates=2))
    script = [[{"hypothesis": "a hook", "edits": {".GIT/hooks/post-commit": "#!/bin/sh\n"}},
               {"hypothesis": "honest", "params": {"w": 2.5}}]]
    stopped = {}

    def stop_once_proposed(event):
        if event.type == "architect.proposal" and not stopped:
            stopped["at"] = event
            progenitor.stop_run(event.run, repo=repo)
    first = progenitor.start_run(repo, RunOptions(sandbox="process", executor="local"), architect=scripted(script),
                                 on_event=stop_once_proposed)
    assert first.status == "stopped", "stopped with the proposal saved, before the coder"
    resumed = progenitor.resume_run(first.run_id, repo=repo, architect=scripted(script))
    assert resumed.status == "finished"
    cands = {c["k"]: c for c in lineage_json(first.run_id, repo=repo)["candidates"]}
    assert cands[0]["status"] == "failed"
    assert cands[0]["reason"] == ("the coder could not apply the proposal: edit target '.GIT/hooks/post-commit' "
                                  "is inside git's own files ('.GIT')")
    assert cands[1]["decision"]["verdict"] == "promoted"


@pytest.mark.loop
def test_the_best_candidate_changing_requirements_waits_for_a_person_and_is_not_promoted_by_policy(tmp_path):
    files = {**toy_task_files(generations=1, candidates=2), "requirements.txt": "numpy\n"}
    repo = make_repo(tmp_path / "repo", files)
    script = [[{"hypothesis": "better, with a new package", "params": {"w": 2.9},
                "edits": {"requirements.txt": "numpy\nleftpad-ai\n"}},
               {"hypothesis": "good", "params": {"w": 2.5}}]]
    architect = scripted(script)
    summary = progenitor.start_run(repo, RunOptions(sandbox="process", executor="local"), architect=architect,
                                   detach=True)
    assert summary.status == "waiting", "an escalation waits for a person instead of being silently dropped"
    [waiting] = progenitor.pending(summary.run_id, repo=repo)
    assert "dependency" in waiting.model_dump_json().lower()
    assert summary.champion_commit == git.Repo(repo).head.commit.hexsha, "policy promoted nothing"
    progenitor.decide(summary.run_id, "reject", by="reviewer", comment="no new packages", repo=repo)
    summary = progenitor.resume_run(summary.run_id, repo=repo, architect=architect)
    cands = {c["k"]: c for c in lineage_json(summary.run_id, repo=repo)["candidates"]}
    [dep] = [f for f in cands[0]["findings"] if f["rule"] == "dependency-change"]
    assert dep["escalate"] and cands[0]["status"] == "scored"
    assert cands[0]["decision"]["verdict"] != "promoted"
    assert summary.champion_commit != cands[0]["sha"]
