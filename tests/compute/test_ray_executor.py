"""The Ray executor on a real local Ray instance: same interface as the local one, data
shipped once, GPUs granted one per candidate, cancellation that leaves no sandbox behind,
early stopping inside the Ray task."""

from __future__ import annotations

import os
import sys
import threading
import uuid
from pathlib import Path

import pytest

from progenitor.compute import get_executor
from progenitor.compute.base import JobResult, TrainJob
from progenitor.compute.ray_executor import RayExecutor
from progenitor.errors import UserError
from progenitor.sandbox.base import Limits
from tests.compute.test_pruning import BEHIND_STEPS, prune_job
from tests.helpers.ray_fixtures import outputs, processes_with, ray_local, tree_archive  # noqa: F401 - ray_local is a fixture
from tests.helpers.waiting import wait_for

PY = sys.executable


def job(key: str, command: str, files: dict[str, str] | None = None, **fields) -> TrainJob:
    limits = fields.pop("limits", Limits(cpus=1, wall_time=60))
    return TrainJob(key=key, command=command, tree_archive=tree_archive(files or {"README": "tree\n"}),
                    limits=limits, **fields)


def test_registry_names_the_choices(tmp_path):
    with pytest.raises(UserError, match="choose one of: local, ray"):
        get_executor("slurm", tmp_path)
    assert get_executor("local", tmp_path).name == "local"


@pytest.mark.ray
def test_jobs_run_as_ray_tasks_with_data_tree_and_outputs(ray_local, tmp_path):
    data = tmp_path / "visible"
    data.mkdir()
    (data / "train.txt").write_text("21\n")
    script = "import sys; n = int(open(sys.argv[1] + '/train.txt').read()); open(sys.argv[2] + '/answer.txt', 'w').write(str(2 * n)); print('trained', n)"
    jobs = [job(f"r/g1/c{k}", f"{PY} train.py {{data}} {{out}}", {"train.py": script}) for k in range(3)]
    events: list[tuple[str, dict]] = []
    cache = tmp_path / "cache"
    executor = get_executor("ray", data, cache_dir=str(cache))
    try:
        results = list(executor.run(jobs, on_event=lambda kind, payload: events.append((kind, payload))))
        again = list(executor.run(jobs[:1]))  # the data is shipped and unpacked once, not per run
    finally:
        executor.close()
    assert ray_local.is_initialized()  # the executor joined the session's instance and left it up
    assert again[0].sandbox.ok
    [unpacked] = [p for p in (cache / "progenitor-ray-data").iterdir() if p.is_dir()]
    assert (unpacked / "train.txt").read_text() == "21\n"
    assert (unpacked / "train.txt").stat().st_mode & 0o777 == 0o444  # no candidate may change it for the next
    assert sorted(r.key for r in results) == [j.key for j in jobs]
    node_id = ray_local.get_runtime_context().get_node_id()
    for result in results:
        assert result.sandbox.ok, result.sandbox
        assert outputs(result) == {"answer.txt": "42"}
        assert result.node.endswith("/" + node_id)
    kinds = {kind for kind, _ in events}
    assert {"train.start", "train.line", "train.end"} <= kinds
    assert ("train.line", {"key": "r/g1/c0", "stream": "stdout", "line": "trained 21"}) in events


@pytest.mark.ray
def test_each_candidate_sees_only_the_gpu_ray_gave_it(ray_local, tmp_path):
    # Two logical GPUs declared to the local instance; each job asks for one and holds it
    # for a second so that both hold theirs at the same time.
    command = "echo \"$CUDA_VISIBLE_DEVICES\" > {out}/cuda.txt; sleep 1"
    jobs = [job(f"r/g1/c{k}", command, num_gpus=1) for k in range(2)]
    executor = RayExecutor(None)
    try:
        results = list(executor.run(jobs))
    finally:
        executor.close()
    seen = []
    for result in results:
        assert result.sandbox.ok, result.sandbox
        assert len(result.gpu_ids) == 1
        assert outputs(result)["cuda.txt"].strip() == result.gpu_ids[0]
        seen.append(result.gpu_ids[0])
    assert sorted(seen) == ["0", "1"]


@pytest.mark.ray
def test_a_job_without_gpus_sees_none(ray_local):
    executor = RayExecutor(None)
    try:
        [result] = list(executor.run([job("r/g1/c0", "echo \"[$CUDA_VISIBLE_DEVICES]\" > {out}/cuda.txt")]))
    finally:
        executor.close()
    assert result.gpu_ids == [] and outputs(result)["cuda.txt"].strip() == "[]"


CANCEL_DEADLINE = 60
"""Seconds a cancelled run() gets to return: its bound is the canceller's (25 s), with room."""


@pytest.mark.ray
def test_cancel_stops_running_and_queued_tasks_and_their_sandboxes(ray_local):
    marker = f"progenitor-cancel-{uuid.uuid4().hex[:8]}"
    # Three 1-CPU jobs on 2 CPUs: two run, one waits in Ray's queue.
    sleeper = f"{PY} -c \"import time; print('up', flush=True); time.sleep(120)\" {marker}"
    jobs = [job(f"r/g1/c{k}", sleeper, limits=Limits(cpus=1, wall_time=300)) for k in range(3)]
    executor = RayExecutor(None)
    started = threading.Event()
    running: set[str] = set()

    def on_event(kind: str, payload: dict) -> None:
        if kind == "train.line" and payload["line"] == "up":
            running.add(payload["key"])
            if len(running) == 2:
                started.set()

    results: list[JobResult] = []
    consumer = threading.Thread(target=lambda: results.extend(executor.run(jobs, on_event=on_event)))
    consumer.start()
    try:
        assert started.wait(120), "the sandboxes never started"
        assert len(processes_with(marker)) >= 2
        executor.cancel()
        consumer.join(CANCEL_DEADLINE)
        assert not consumer.is_alive(), "run() did not return after cancel()"
    finally:
        executor.close()
    assert sorted(r.key for r in results) == [j.key for j in jobs]
    assert all(r.sandbox.status == "killed" for r in results), [r.sandbox for r in results]
    # The two that ran report what their sandbox did; the queued one never started.
    assert {r.key for r in results if r.sandbox.duration > 0} == running
    assert wait_for(lambda: not processes_with(marker), 30), "a cancelled sandbox outlived its task"


@pytest.mark.ray
def test_a_caller_that_stops_reading_cancels_the_rest(ray_local):
    marker = f"progenitor-abandon-{uuid.uuid4().hex[:8]}"
    jobs = [job("r/g1/c0", "echo quick"), job("r/g1/c1", f"sleep 120 || {marker}", limits=Limits(cpus=1, wall_time=300))]
    executor = RayExecutor(None)
    try:
        results = executor.run(jobs)
        first = next(results)
        assert wait_for(lambda: processes_with(marker), 120), "the slow job never started"
        results.close()  # e.g. the trainer raised: the generator's cleanup cancels the slow job
    finally:
        executor.close()
    assert first.key == "r/g1/c0" and first.sandbox.ok
    assert not executor.inflight(), "close() of run() waited until the slow job ended"
    assert wait_for(lambda: not processes_with(marker), 30), "a cancelled sandbox outlived its task"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.ray
def test_a_task_deaf_to_cancel_is_killed_and_run_returns(ray_local, monkeypatch):
    import ray

    from progenitor.compute import ray_executor
    from progenitor.testing.ray_doubles import deaf_task

    monkeypatch.setattr(ray_executor, "_remote_task", lambda: ray.remote(deaf_task))
    executor = RayExecutor(None, cancel_soft_seconds=2, cancel_give_up_seconds=20)
    workers: list[int] = []
    results: list[JobResult] = []

    def on_event(kind: str, payload: dict) -> None:
        if kind == "train.start":
            workers.append(int(payload["node"]))

    consumer = threading.Thread(target=lambda: results.extend(executor.run([job("r/g1/c0", "true")], on_event=on_event)))
    consumer.start()
    try:
        assert wait_for(lambda: workers, 120), "the task never started"
        executor.cancel()
        consumer.join(CANCEL_DEADLINE)
        assert not consumer.is_alive(), "run() did not return after cancel()"
    finally:
        executor.close()
    [result] = results
    assert result.sandbox.status == "killed"
    assert "did not confirm" not in result.sandbox.reason, "the forced cancel should have ended it"
    assert wait_for(lambda: not _alive(workers[0]), 30), "the forced cancel left the worker running"


def test_stop_waits_for_no_thread_that_never_started():
    from progenitor.compute.ray_task import _stop

    cancel, finished = threading.Event(), threading.Event()
    _stop(cancel, finished, threading.Thread(target=lambda: None))
    assert cancel.is_set(), "a job whose thread had not started yet still finds itself cancelled"


@pytest.mark.ray
def test_early_stopping_runs_inside_the_ray_task(ray_local):
    executor = RayExecutor(None)
    try:
        [result] = list(executor.run([prune_job()]))
    finally:
        executor.close()
    assert result.pruned is not None, result.sandbox
    assert result.sandbox.status == "killed" and 3 <= result.pruned["step"] < BEHIND_STEPS
    assert "finished" not in result.sandbox.stdout


@pytest.mark.ray
def test_a_job_larger_than_the_local_instance_is_refused(ray_local):
    executor = RayExecutor(None)
    try:
        with pytest.raises(UserError, match="asks for 3 GPUs per candidate but the local Ray instance has 2 GPUs"):
            list(executor.run([job("r/g1/c0", "true", num_gpus=3)]))
    finally:
        executor.close()


def test_address_from_the_environment_is_used(monkeypatch):
    from progenitor.compute.ray_executor import RayConfig

    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert RayConfig().address == "10.0.0.1:6379"
    assert RayConfig(address=None).address is None
    monkeypatch.delenv("RAY_ADDRESS")
    assert RayConfig().address is None
