"""What every executor promises the trainer node, run against each of them (see conftest):
a result per job under its key, the outputs back, the visible data readable, events as the
jobs go, one job's failure kept to itself, and cancellation that stops all and leaves no
sandbox behind."""

from __future__ import annotations

import sys
import threading
import time
import uuid

from progenitor.compute.base import JobResult, TrainJob
from progenitor.sandbox.base import Limits
from tests.helpers.ray_fixtures import outputs, processes_with, tree_archive

PY = sys.executable


def job(key: str, script: str, wall_time: float = 60, **fields) -> TrainJob:
    return TrainJob(key=key, command=f"{PY} train.py {{data}} {{out}}", tree_archive=tree_archive({"train.py": script}),
                    limits=Limits(cpus=1, wall_time=wall_time), backend="process", **fields)


READ_AND_WRITE = ("import sys; n = int(open(sys.argv[1] + '/train.txt').read()); "
                  "open(sys.argv[2] + '/answer.txt', 'w').write(str(2 * n)); print('trained', n)")


def test_every_job_comes_back_under_its_key_with_its_outputs(make_executor, tmp_path):
    data = tmp_path / "visible"
    data.mkdir()
    (data / "train.txt").write_text("21\n")
    executor = make_executor(data)
    jobs = [job(f"r/g1/c{k}", READ_AND_WRITE) for k in range(3)]
    events: list[tuple[str, str]] = []
    results = list(executor.run(jobs, on_event=lambda kind, payload: events.append((kind, payload["key"]))))
    assert sorted(r.key for r in results) == sorted(j.key for j in jobs)
    for result in results:
        assert result.sandbox.status == "ok", result.sandbox.reason
        assert outputs(result) == {"answer.txt": "42"}
        assert "trained 21" in result.sandbox.stdout
    for j in jobs:
        assert ("train.start", j.key) in events and ("train.line", j.key) in events


def test_a_failing_job_fails_alone(make_executor, tmp_path):
    executor = make_executor(None)
    jobs = [job("r/g1/c0", "import sys; sys.exit('broken on purpose')"),
            job("r/g1/c1", "import sys; open(sys.argv[1] + '/ok', 'w').write('yes')")]
    jobs = [j.model_copy(update={"command": f"{PY} train.py {{out}}"}) for j in jobs]
    results = {r.key: r for r in executor.run(jobs)}
    assert results["r/g1/c0"].sandbox.status == "failed" and "broken on purpose" in results["r/g1/c0"].sandbox.reason
    assert results["r/g1/c1"].sandbox.status == "ok" and outputs(results["r/g1/c1"]) == {"ok": "yes"}


def test_cancel_stops_every_job_and_leaves_no_sandbox(make_executor, tmp_path):
    marker = f"progenitor-conformance-{uuid.uuid4().hex[:8]}"
    executor = make_executor(None)
    sleeper = f"import time, sys; print('{marker}', flush=True); time.sleep(600)"
    jobs = [job(f"r/g1/c{k}", sleeper).model_copy(update={"command": f"{PY} train.py {marker}"}) for k in range(2)]
    started = threading.Event()
    seen: list[str] = []

    def on_event(kind: str, payload: dict) -> None:
        if kind == "train.line" and marker in payload["line"]:
            seen.append(payload["key"])
            started.set()

    results: list[JobResult] = []
    worker = threading.Thread(target=lambda: results.extend(executor.run(jobs, on_event=on_event)))
    worker.start()
    assert started.wait(120), "no job started"
    began = time.monotonic()
    executor.cancel()
    worker.join(120)
    assert not worker.is_alive(), "run() did not return after cancel()"
    assert time.monotonic() - began < 120
    assert all(r.sandbox.status == "killed" for r in results), [r.sandbox for r in results]
    assert not processes_with(marker), "a cancelled sandbox is still running"
