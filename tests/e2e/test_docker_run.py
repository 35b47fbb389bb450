"""Whole runs on the Docker backend: every candidate in its own container, none left behind,
not even after the driver is killed mid-training and the run resumed."""

from __future__ import annotations

import subprocess
import sys

import pytest

import progenitor
from progenitor.options import RunOptions
from progenitor.testing import make_repo, toy_task_files
from tests.helpers.records import lineage_json
from tests.helpers.waiting import run_then_kill

pytestmark = pytest.mark.docker

SLEEPY_TRAIN = toy_task_files()["train.py"].replace(
    'w = float(config["w"])', 'w = float(config["w"])\nimport time; time.sleep(float(config.get("sleep", 0)))'
)


def _containers(run: str) -> list[str]:
    """This run's containers only: other runs (or other tests) on the same daemon are not ours."""
    import docker

    return [c.name for c in docker.from_env().containers.list(all=True, ignore_removed=True, filters={"label": f"progenitor.run={run}"})]


@pytest.fixture(scope="module")
def toy_image(tmp_path_factory):
    from progenitor.sandbox.docker.images import build_task_image

    context = tmp_path_factory.mktemp("toy-image")
    (context / "requirements.txt").write_text("numpy\npyyaml\n")
    return build_task_image(context)


def _toy_repo(path, **extra):
    files = toy_task_files(**extra)
    files["requirements.txt"] = "numpy\npyyaml\n"
    files["train.py"] = SLEEPY_TRAIN
    return files


def test_toy_run_on_docker_every_candidate_in_a_container(tmp_path, toy_image):
    import threading

    files = _toy_repo(tmp_path, generations=1, candidates=2)
    files["config.yaml"] += "sleep: 1\n"
    repo = make_repo(tmp_path / "repo", files)
    import docker

    client = docker.from_env()
    seen: set[str] = set()
    done = threading.Event()

    failures: list[BaseException] = []

    def watch() -> None:
        while not done.wait(0.1):
            try:  # a container removed between docker's list and inspect is skipped, not fatal
                listed = client.containers.list(all=True, ignore_removed=True, filters={"label": "progenitor=1"})
            except docker.errors.APIError as exc:
                failures.append(exc)
                continue
            seen.update(c.name for c in listed)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        summary = progenitor.start_run(repo, RunOptions(sandbox="docker", executor="local"))
    finally:
        done.set()
        watcher.join()
    assert len(failures) < 5, f"the watcher could not list containers: {failures}"
    assert summary.status == "finished" and summary.backend == "docker"
    records = lineage_json(summary.run_id, repo=repo)["candidates"]
    assert [c["train"]["backend"] for c in records] == ["docker", "docker"]
    ours = {name for name in seen if summary.run_id in name}
    assert len(ours) == 3, f"the baseline and each candidate in a container of its own: {seen}"
    assert not _containers(summary.run_id), "no container is left after a run"


def test_killed_run_leaves_no_container_after_resume(tmp_path, toy_image):
    files = _toy_repo(tmp_path, generations=1, candidates=2)
    files["config.yaml"] += "sleep: 8\n"
    files["progenitor.yaml"] = files["progenitor.yaml"].replace("timeout: 30", "timeout: 60")
    repo = make_repo(tmp_path / "repo", files)
    def both_training_in_containers(run) -> bool:
        return (sum(e.type == "train.start" and e.gen == 1 for e in run.events()) == 2
                and len(_containers(run.run_id)) >= 2)

    run = run_then_kill(repo, ["--sandbox", "docker", "--executor", "local", "-q"], both_training_in_containers, 120,
                        "its candidates training in containers")
    assert _containers(run.run_id), "the killed driver left its containers (the resume must sweep them)"
    summary = progenitor.resume_run(run.run_id, repo=repo)
    assert summary.status == "finished"
    assert not _containers(run.run_id), "no container is left after the resumed run"


@pytest.mark.slow
def test_digits_example_end_to_end_on_docker(tmp_path):
    import re

    repo = tmp_path / "digits"
    cli = [sys.executable, "-m", "progenitor.cli"]
    subprocess.run([*cli, "init", "--example", "digits", str(repo)], check=True, capture_output=True)
    subprocess.run([*cli, "sandbox", "build", str(repo), "-q"], check=True, capture_output=True, timeout=1200)
    proc = subprocess.run([*cli, "run", str(repo), "-g", "1", "-k", "2", "--sandbox", "docker"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    baseline = float(re.search(r"^baseline accuracy: ([\d.]+)$", proc.stdout, re.M).group(1))
    champion = float(re.search(r"^champion accuracy: ([\d.]+)$", proc.stdout, re.M).group(1))
    assert 0.85 < baseline <= champion
    run_id = next((repo / ".progenitor" / "runs").iterdir()).name
    records = lineage_json(run_id, repo=repo)["candidates"]
    assert {c["train"]["backend"] for c in records} == {"docker"}
    assert not _containers(run_id)
