"""The asynchronous mode (``search.mode: async``): a candidate proposed each time a slot frees,
decided on its own as its score comes, and a killed run that resumes without training twice."""

from __future__ import annotations

import time

import pytest

import progenitor
from progenitor.options import RunOptions
from progenitor.run.ledger import Ledger
from progenitor.run.rundir import RunDir
from progenitor.task.spec import load_spec
from progenitor.testing import make_repo, toy_task_files
from tests.helpers.gating import wait_for
from tests.helpers.records import lineage_json, status_json
from tests.helpers.waiting import run_then_kill

SLEEPY_TRAIN = toy_task_files()["train.py"].replace(
    'w = float(config["w"])', 'w = float(config["w"])\nimport time; time.sleep(float(config.get("sleep", 0)))'
)


def _async_repo(tmp_path, generations=2, candidates=2, sleep=0.0):
    files = toy_task_files(generations=generations, candidates=candidates)
    files["progenitor.yaml"] += "search: {mode: async}\n"
    if sleep:
        files["train.py"] = SLEEPY_TRAIN
        files["config.yaml"] += f"sleep: {sleep}\n"
    return make_repo(tmp_path / "repo", files)


def _times(run: RunDir) -> list[tuple[str, int, float]]:
    return [(e.type, getattr(e, "gen", -1), e.t) for e in run.events()
            if e.type in ("architect.proposal", "train.start", "train.end", "generation.end", "baseline.end")]


def test_the_spec_takes_async_and_counts_a_generation_per_candidate(tmp_path):
    repo = _async_repo(tmp_path, generations=3, candidates=4)
    spec = load_spec(repo)
    assert spec.search.mode == "async" and spec.per_generation == 1 and spec.generations_total == 12
    plain = load_spec(make_repo(tmp_path / "plain", toy_task_files(generations=3, candidates=4)))
    assert plain.per_generation == 4 and plain.generations_total == 3


@pytest.mark.loop
def test_async_run_proposes_while_others_train_and_decides_each_candidate(tmp_path):
    repo = _async_repo(tmp_path, sleep=3.0)
    summary = progenitor.start_run(repo, RunOptions(sandbox="process", executor="local", max_parallel=2))
    assert summary.status == "finished" and summary.stop_reason == "budget: 4 candidates proposed"
    assert summary.mode == "async" and summary.slots == 2 and summary.generations == 4 and summary.tried == 4
    run = RunDir(repo, summary.run_id)
    times = _times(run)
    at = {(kind, gen): t for kind, gen, t in times}
    # The first candidate is proposed while the human baseline trains, and trains beside it; the
    # baseline is settled before any decision.
    assert at[("architect.proposal", 1)] < at[("train.end", 0)]
    assert at[("train.start", 1)] < at[("train.end", 0)]
    assert at[("baseline.end", -1)] < min(t for kind, _, t in times if kind == "generation.end")
    # Two slots: candidates trained side by side, each proposed when a slot freed, before the
    # ones still training were decided.
    spans = {g: (at[("train.start", g)], at[("train.end", g)]) for g in (1, 2, 3, 4)}
    assert any(spans[a][0] < spans[b][1] and spans[b][0] < spans[a][1] for a in spans for b in spans if a < b)
    assert any(at[("architect.proposal", g)] < at[("generation.end", g - 1)] for g in (2, 3, 4))
    # Every candidate is a generation of one, trained once, decided once, with its verdict.
    lineage = lineage_json(run.run_id, repo=repo)
    cands = lineage["candidates"]
    assert sorted((c["gen"], c["k"]) for c in cands) == [(1, 0), (2, 0), (3, 0), (4, 0)]
    assert all(c["status"] == "scored" and c["decision"]["verdict"] for c in cands)
    ends = [gen for kind, gen, _ in times if kind == "train.end"]
    assert sorted(ends) == [0, 1, 2, 3, 4]
    # The champion is the best promoted candidate, and it beats every candidate decided after it.
    promoted = [c for c in cands if c["decision"]["verdict"] == "promoted"]
    assert promoted and lineage["champion"] == summary.champion_commit
    best = min(c["metrics"]["error"] for c in promoted)
    assert summary.champion == best and summary.champion <= summary.baseline
    # The search's study holds one finished trial per candidate, the baseline's besides: the trials
    # of candidates still training when the next was proposed were not told failed.
    import optuna

    study = optuna.load_study(study_name=run.run_id, storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(run.path / "study.log"))))
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") == 5, states
    # status --json says the mode and the idle slot-seconds
    status = status_json(run.run_id, repo=repo)
    assert status["mode"] == "async" and status["slots"] == 2
    assert 0 <= summary.idle_slot_seconds <= 2 * summary.seconds + 0.1


@pytest.mark.loop
def test_async_continue_adds_candidates(tmp_path):
    repo = _async_repo(tmp_path, generations=1, candidates=2)
    first = progenitor.start_run(repo, RunOptions(sandbox="process", executor="local", max_parallel=2))
    assert first.status == "finished" and first.generations == 2
    more = progenitor.continue_run(first.run_id, repo=repo, generations=1)
    assert more.status == "finished" and more.generations == 4, more.stop_reason
    ends = [gen for kind, gen, _ in _times(RunDir(repo, first.run_id)) if kind == "train.end"]
    assert sorted(ends) == [0, 1, 2, 3, 4], "a training was repeated"


@pytest.mark.slow
def test_sigkill_of_an_async_run_then_resume_trains_nothing_twice(tmp_path):
    repo = _async_repo(tmp_path, generations=2, candidates=2, sleep=1.5)
    def one_decided_while_a_later_one_trains(run) -> bool:
        kinds = {(kind, gen) for kind, gen, _ in _times(run)}
        decided = ("generation.end", 1) in kinds or ("generation.end", 2) in kinds
        return decided and ("train.start", 3) in kinds and ("train.end", 3) not in kinds

    run = run_then_kill(repo, ["--sandbox", "process", "--executor", "local", "--parallel", "2", "-q"],
                        one_decided_while_a_later_one_trains, 300, "a candidate decided while another trained")
    summary = progenitor.resume_run(run.run_id, repo=repo)
    assert summary.status == "finished" and summary.generations == 4, summary.stop_reason
    ends: dict[int, int] = {}
    for kind, gen, _ in _times(run):
        if kind == "train.end":
            ends[gen] = ends.get(gen, 0) + 1
    assert ends == {0: 1, 1: 1, 2: 1, 3: 1, 4: 1}, f"a training finished twice, or never: {ends}"
    lineage = lineage_json(run.run_id, repo=repo)
    assert sorted((c["gen"], c["status"]) for c in lineage["candidates"]) == [
        (1, "scored"), (2, "scored"), (3, "scored"), (4, "scored")]
    # The ledger has every training that started, the one the kill cut off included.
    starts = sum(1 for kind, _, _ in _times(run) if kind == "train.start")
    assert Ledger(run.ledger).totals().attempts == starts >= 5


@pytest.mark.loop
def test_async_promotion_gate_holds_the_promotion_while_trainings_go_on(tmp_path):
    import threading

    files = toy_task_files(generations=2, candidates=2, oversight="mode: approver, poll_seconds: 0.05")
    files["progenitor.yaml"] += "search: {mode: async}\n"
    files["train.py"] = SLEEPY_TRAIN
    files["config.yaml"] += "sleep: 1.5\n"
    repo = make_repo(tmp_path / "repo", files)
    events: list = []
    result: dict = {}

    def work() -> None:
        try:
            result["summary"] = progenitor.start_run(
                repo, RunOptions(sandbox="process", executor="local", max_parallel=2), on_event=events.append)
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            result["error"] = exc

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    decided: list[str] = []
    overlapped = 0
    deadline = time.time() + 240
    while thread.is_alive() and time.time() < deadline:
        waiting = [e for e in events if e.type == "gate.waiting" and e.gate not in decided]
        if waiting:
            gate = waiting[0]
            at = events.index(gate)
            started = {e.gen for e in events[:at] if e.type == "train.start"}
            ended = {e.gen for e in events[:at] if e.type == "train.end"}
            under_way = started - ended
            if under_way:
                # The person has not decided yet: what was training goes on and ends.
                wait_for(lambda: under_way <= {e.gen for e in events if e.type == "train.end"}, timeout=60,
                         what="the trainings under way at the gate to end before the decision")
                overlapped += 1
            progenitor.decide(gate.run, "approve", by="ann", comment="fine", repo=repo)
            decided.append(gate.gate)
        time.sleep(0.05)
    thread.join(30)
    assert "error" not in result, result.get("error")
    summary = result["summary"]
    assert summary.status == "finished" and summary.generations == 4
    assert decided, "no promotion was asked about"
    assert overlapped, "no gate opened while a training was under way"
    promoted = [c for c in lineage_json(summary.run_id, repo=repo)["candidates"]
                if c["decision"]["verdict"] == "promoted"]
    assert promoted and all(c["decision"]["by"] == "human:ann" for c in promoted)
    assert len(promoted) <= len(decided)


@pytest.mark.loop
def test_a_stop_while_candidates_train_in_async_mode_leaves_the_run_resumable(tmp_path):
    import threading

    repo = _async_repo(tmp_path, generations=2, candidates=2, sleep=2.0)
    events: list = []
    result: dict = {}

    def work() -> None:
        result["summary"] = progenitor.start_run(repo, RunOptions(sandbox="process", executor="local", max_parallel=2),
                                                 on_event=events.append)

    worker = threading.Thread(target=work)
    worker.start()
    # Both slots busy: two candidates in the pool, neither decided.
    wait_for(lambda: {e.gen for e in events if e.type == "train.start"} >= {1, 2}, timeout=300,
             what="two candidates training")
    progenitor.stop_run(events[0].run, repo=repo)
    worker.join(300)
    assert not worker.is_alive(), "the stopped run did not return"
    assert result["summary"].status == "stopped"
    resumed = progenitor.resume_run(result["summary"].run_id, repo=repo)
    assert resumed.status == "finished" and resumed.generations == 4, resumed.stop_reason
    ends: dict[int, int] = {}
    for kind, gen, _ in _times(RunDir(repo, resumed.run_id)):
        if kind == "train.end":
            ends[gen] = ends.get(gen, 0) + 1
    assert ends == {0: 1, 1: 1, 2: 1, 3: 1, 4: 1}, ends
    lineage = lineage_json(resumed.run_id, repo=repo)
    assert sorted(c["gen"] for c in lineage["candidates"] if c["status"] == "scored") == [1, 2, 3, 4]


@pytest.mark.loop
def test_with_one_slot_the_async_mode_is_reproducible_for_a_seed(tmp_path):
    picks = []
    for name in ("a", "b"):
        repo = _async_repo(tmp_path / name, generations=2, candidates=2)
        summary = progenitor.start_run(repo, RunOptions(sandbox="process", executor="local", max_parallel=1))
        assert summary.status == "finished" and summary.slots == 1
        lineage = lineage_json(summary.run_id, repo=repo)
        picks.append([(c["gen"], c["proposal"]["params"], c["decision"]["verdict"]) for c in lineage["candidates"]])
    assert picks[0] == picks[1]


def test_after_a_decision_a_stop_asked_for_never_ends_the_graph():
    """The pool empty (one slot) and a stop asked for while a candidate was decided: the graph goes
    to harvest, whose turn raises the stop (resumable), never to its end (which no resume leaves)."""
    from types import SimpleNamespace

    from progenitor.candidate import Candidate, Proposal
    from progenitor.workflows.asynchronous import after_promote
    from progenitor.workflows.state import Flow, State

    def ctx(stop):
        return SimpleNamespace(run=SimpleNamespace(stop_requested=lambda: stop))

    assert after_promote(ctx("interrupted (Ctrl-C)"), State()) == "harvest"
    assert after_promote(ctx("interrupted (Ctrl-C)"), State(stop_reason="budget: 4 candidates proposed")) == "harvest"
    assert after_promote(ctx(None), State(stop_reason="budget: 4 candidates proposed")) == "end"
    waiting = Candidate.new(Proposal(gen=3, k=0, hypothesis="h"), "r1", "a" * 40, "error")
    assert after_promote(ctx(None), State(stop_reason="target reached", flow=Flow(inflight=[waiting]))) == "harvest"
    assert after_promote(ctx(None), State()) == "harvest"  # harvest launches, decides or ends


@pytest.mark.loop
def test_a_baseline_that_fails_to_train_in_async_mode_ends_the_run_with_what_to_do(tmp_path):
    from progenitor.errors import UserError

    files = toy_task_files()
    files["progenitor.yaml"] += "search: {mode: async}\n"
    files["train.py"] = "import sys\nsys.exit('no data here')\n"
    repo = make_repo(tmp_path / "repo", files)
    with pytest.raises(UserError, match="the human baseline .* failed to train"):
        progenitor.start_run(repo, RunOptions(sandbox="process", executor="local", max_parallel=2))
