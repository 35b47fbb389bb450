"""The ledger adds up, survives a restart, does not double count a replay, and trips caps."""

from __future__ import annotations

import json
import time

import pytest

from progenitor.compute.base import JobResult, TrainJob
from progenitor.run.ledger import Ledger, load_ledger
from progenitor.sandbox.base import Limits, SandboxResult
from progenitor.task.spec import Budget


def _result(key: str, duration: float, cpu: float = 0.0, status: str = "ok", **extra) -> JobResult:
    return JobResult(key=key, sandbox=SandboxResult(status=status, duration=duration, cpu_seconds=cpu), **extra)


def _job(key: str, cpus: float = 1.0, gpus: float = 0.0) -> TrainJob:
    return TrainJob(key=key, command="true", tree_archive=b"", limits=Limits(cpus=cpus), num_gpus=gpus)


def test_totals_add_up_per_candidate_and_per_run(tmp_path):
    ledger = Ledger(tmp_path / "ledger.json")
    ledger.record_job(_job("r1/g1/c0", cpus=2), _result("r1/g1/c0", duration=10.0, cpu=15.0))  # measured
    ledger.record_job(_job("r1/g1/c1", cpus=2), _result("r1/g1/c1", duration=10.0))  # unknown: 2 x 10
    ledger.record_job(_job("r1/g2/c0", cpus=1, gpus=0.5), _result("r1/g2/c0", duration=8.0, cpu=7.0))
    ledger.add_llm("architect", dollars=0.25, prompt_tokens=1000, completion_tokens=200)
    ledger.add_llm("architect", dollars=0.05, prompt_tokens=100, completion_tokens=20)
    ledger.add_llm("coder", dollars=0.10, prompt_tokens=500, completion_tokens=300)

    assert ledger.candidate("r1/g1/c0").cpu_seconds == 15.0
    assert ledger.candidate("r1/g1/c0").attempts[0].cpu_measured
    assert ledger.candidate("r1/g1/c1").cpu_seconds == 20.0
    assert not ledger.candidate("r1/g1/c1").attempts[0].cpu_measured
    assert ledger.candidate("r1/g2/c0").gpu_seconds == 4.0

    total = ledger.totals()
    assert (total.candidates, total.attempts) == (3, 3)
    assert total.cpu_seconds == 15.0 + 20.0 + 7.0
    assert total.gpu_seconds == 4.0
    assert total.train_wall_seconds == 28.0
    assert total.dollars == pytest.approx(0.40)
    assert (total.prompt_tokens, total.completion_tokens) == (1600, 520)
    assert ledger.data.llm["architect"].calls == 2

    g1, g2 = ledger.totals(generation=1), ledger.totals(generation=2)
    assert (g1.candidates, g1.cpu_seconds, g2.cpu_seconds) == (2, 35.0, 7.0)
    assert g1.cpu_seconds + g2.cpu_seconds == total.cpu_seconds


def test_gpu_seconds_fall_back_to_the_ids_granted(tmp_path):
    ledger = Ledger(tmp_path / "ledger.json")
    ledger.record_job(_job("r/g1/c0"), _result("r/g1/c0", duration=5.0, gpu_ids=["0", "1"]))
    assert ledger.totals().gpu_seconds == 10.0


def test_replay_is_not_charged_twice_but_a_retrain_is(tmp_path):
    ledger = Ledger(tmp_path / "ledger.json")
    cancelled = _result("r/g1/c0", duration=3.0, cpu=2.5, status="killed")
    finished = _result("r/g1/c0", duration=9.0, cpu=8.5)
    ledger.record_job(_job("r/g1/c0"), cancelled)
    ledger.record_job(_job("r/g1/c0"), cancelled)  # the same attempt recorded again
    ledger.record_job(_job("r/g1/c0"), finished)  # resumed: trained again
    ledger.record_job(_job("r/g1/c0"), finished)  # a later resume looks it up again
    cost = ledger.candidate("r/g1/c0")
    assert [a.status for a in cost.attempts] == ["killed", "ok"]
    assert cost.cpu_seconds == 11.0 and cost.wall_seconds == 12.0


def test_pruned_attempt_keeps_its_step(tmp_path):
    ledger = Ledger(tmp_path / "ledger.json")
    result = _result("r/g1/c0", duration=4.0, cpu=4.0, status="killed", pruned={"step": 7, "value": 0.3})
    ledger.record_job(_job("r/g1/c0"), result)
    assert ledger.candidate("r/g1/c0").attempts[0].pruned_step == 7


def test_persisted_as_json_and_reloaded(tmp_path):
    path = tmp_path / "run" / "ledger.json"
    ledger = Ledger(path)
    ledger.record_job(_job("r/g1/c0"), _result("r/g1/c0", duration=2.0, cpu=1.5))
    ledger.add_llm("architect", dollars=0.01, prompt_tokens=10)
    ledger.save()
    on_disk = json.loads(path.read_text())
    assert on_disk["candidates"]["r/g1/c0"]["attempts"][0]["cpu_seconds"] == 1.5
    again = Ledger(path)
    assert again.totals().cpu_seconds == 1.5
    assert again.totals().dollars == 0.01
    assert load_ledger(path)["cpu_seconds"] == 1.5
    assert load_ledger(tmp_path / "none.json")["cpu_seconds"] == 0.0


def test_run_wall_time_counts_sessions_only(tmp_path):
    path = tmp_path / "ledger.json"
    first = Ledger(path)
    first.start_clock()
    time.sleep(0.2)  # the session's work: the time measured, not a wait for something to happen
    first.save()  # e.g. the run died right here
    spent = Ledger(path).run_wall_seconds()
    assert spent >= 0.2
    time.sleep(0.2)  # the run is not running: this may not count
    resumed = Ledger(path)
    assert resumed.run_wall_seconds() == spent, "time between sessions was counted"
    resumed.start_clock()
    time.sleep(0.1)
    assert resumed.run_wall_seconds() >= spent + 0.1
    resumed.stop_clock()
    stopped_at = resumed.run_wall_seconds()
    time.sleep(0.1)
    assert resumed.run_wall_seconds() == stopped_at, "a stopped clock does not run"


def test_check_caps_names_the_cap_reached(tmp_path):
    ledger = Ledger(tmp_path / "ledger.json")
    assert ledger.check_caps(Budget(cpu_hours=1.0, gpu_hours=1.0, wall_hours=1.0, dollars=1.0)) is None
    ledger.record_job(_job("r/g1/c0", cpus=2, gpus=1), _result("r/g1/c0", duration=1800.0))
    assert ledger.check_caps(Budget(cpu_hours=2.0, gpu_hours=1.0)) is None
    assert ledger.check_caps(Budget(cpu_hours=1.0)) == "budget reached: 1 of 1 CPU-hours spent"
    assert ledger.check_caps(Budget(gpu_hours=0.5)) == "budget reached: 0.5 of 0.5 GPU-hours spent"
    ledger.add_llm("coder", dollars=2.5)
    assert ledger.check_caps(Budget(cpu_hours=5.0, dollars=2.0)) == "budget reached: 2.5 of 2 LLM dollars spent"
    ledger.data.run_wall_seconds = 7200.0
    assert ledger.check_caps(Budget(wall_hours=2.0)).endswith("of 2 wall-clock hours spent")
    assert Budget().cpu_hours is None and ledger.check_caps(Budget()) is None


def test_idle_slot_seconds_count_each_training_where_it_held_its_slot(tmp_path):
    ledger = Ledger(tmp_path / "ledger.json")
    assert ledger.idle_slot_seconds() is None  # slots unknown: nothing to say
    ledger.set_slots(2)
    ledger.data.run_wall_seconds = 10.0  # the run's clock when c0 ends: it trained from 0 to 10
    ledger.record_job(_job("r/g1/c0"), _result("r/g1/c0", duration=10.0))
    ledger.data.run_wall_seconds = 12.0  # c1 trained from 6 to 12
    ledger.record_job(_job("r/g1/c1"), _result("r/g1/c1", duration=6.0))
    assert ledger.idle_slot_seconds(0.0, 12.0) == 2 * 12 - 16
    assert ledger.idle_slot_seconds(10.0, 12.0) == 2 * 2 - 2  # only c1 trained after 10
    totals = ledger.totals()
    assert totals.slots == 2 and totals.idle_slot_seconds == 8.0
    assert totals.slot_occupancy == round(16 / 24, 4)
    ledger.save()
    assert Ledger(tmp_path / "ledger.json").idle_slot_seconds(0.0, 12.0) == 8.0  # the spans survive a restart
