"""Three things a person reads after the fact: the ledger counts every training that started (a
kill -9 included), ``status`` shows the objective's own values, and only the outputs the
retention rule keeps stay on the host."""

from __future__ import annotations

import json

from click.testing import CliRunner

from progenitor.api import run_status
from progenitor.cli import cli
from progenitor.run.events import parse_event
from progenitor.run.ledger import Ledger
from progenitor.run.retention import apply_retention, champions_of
from progenitor.run.rundir import RunDir, write_json
from progenitor.sandbox.base import SandboxResult
from progenitor.testing import make_repo


def test_a_training_is_counted_when_it_starts_and_an_interrupted_one_stays_counted(tmp_path):
    ledger = Ledger(tmp_path / "ledger.json")
    ledger.start_clock()
    ledger.start("r1/g1/c0")
    ledger.start("r1/g1/c1")
    ledger.record("r1/g1/c0", SandboxResult(status="ok", duration=2.0, cpu_seconds=1.5), cpus=1)
    ledger.save()  # the driver is killed here: g1/c1 never comes back
    assert ledger.totals().attempts == 2
    resumed = Ledger(tmp_path / "ledger.json")
    resumed.start_clock()
    resumed.start("r1/g1/c1")
    resumed.record("r1/g1/c1", SandboxResult(status="ok", duration=3.0, cpu_seconds=2.0), cpus=1)
    attempts = resumed.candidate("r1/g1/c1").attempts
    assert [a.status for a in attempts] == ["interrupted", "ok"] and attempts[1].started_at is not None
    assert resumed.totals().attempts == 3 and resumed.totals().cpu_seconds == 3.5
    resumed.record("r1/g1/c1", SandboxResult(status="ok", duration=3.0, cpu_seconds=2.0), cpus=1)  # a replay
    assert resumed.totals().attempts == 3


def _run(tmp_path, events: list[dict], summary=None) -> RunDir:
    if not (tmp_path / "repo").exists():  # a real repository: status RUN reads its lineage from git
        make_repo(tmp_path / "repo", {"train.py": "print('accuracy: 0.5')\n"})
    run = RunDir(tmp_path / "repo", "r20260101-abcd")
    run.create({"task": "toy", "status": "finished" if summary else "interrupted", "base": "b" * 40,
                "baseline": {"sha": "b" * 40, "metrics": {"accuracy": 0.5, "error": 3.0}}, "summary": summary})
    for event in events:
        run.emit(parse_event({**event, "v": 2}))
    return run


def test_status_shows_the_objective_by_name_and_the_champion_while_the_run_goes_on(tmp_path):
    start = {"type": "run.start", "repo": "/r", "base": "b" * 40, "backend": "process", "why": "asked",
             "task": "toy", "generations": 2, "candidates": 1, "metric": "error"}
    events = [start, {"type": "generation.end", "gen": 1, "champion": "c" * 40, "champion_value": 1.25}]
    run = _run(tmp_path, events)
    status = run_status(run.run_id, repo=run.repo_root)
    assert (status.metric, status.baseline_value, status.champion_value) == ("error", 3.0, 1.25)
    out = CliRunner(env={"COLUMNS": "250"}).invoke(cli, ["status", "--repo", str(run.repo_root)]).output
    row = next(line for line in out.splitlines() if run.run_id in line)
    assert "error" in row and "3.0000" in row and "1.2500" in row and "0.5000" not in row, out


def test_status_and_lineage_show_a_candidates_escape_sequences_as_text(tmp_path):
    run = _run(tmp_path, [])
    write_json(run.path / "run.json", {**run.meta, "task": "toy\x1b]0;owned\x07", "stop_reason": "x\x1b[2J\r"})
    for args in (["status"], ["status", run.run_id]):  # every run, and one run's own view
        out = CliRunner(env={"COLUMNS": "250"}).invoke(cli, [*args, "--repo", str(run.repo_root)]).output
        assert "\x1b" not in out and "\r" not in out and "\x07" not in out
        assert "\\x1b" in out and "\\r" in out, out


def _outputs(run: RunDir, gen: int, k: int) -> None:
    out = run.outputs(gen, k)
    out.mkdir(parents=True)
    (out / "predictions.npy").write_bytes(b"x" * 100)


def test_retention_keeps_what_its_rule_says_and_gc_applies_it_afterwards(tmp_path):
    run = _run(tmp_path, [])
    for gen, k in [(0, 0), (1, 0), (1, 1), (2, 0), (2, 1)]:
        _outputs(run, gen, k)
    for gen, k in [(1, 0), (1, 1)]:  # repeats with another seed (objective.repeats): kept or removed with their candidate
        (run.repeat(gen, k, 1) / "out").mkdir(parents=True)
        (run.repeat(gen, k, 1) / "out" / "predictions.npy").write_bytes(b"x" * 50)
    write_json(run.record_file(1, 1), {"gen": 1, "k": 1, "decision": {"verdict": "promoted"}})
    write_json(run.record_file(2, 0), {"gen": 2, "k": 0, "decision": {"verdict": "not promoted"}})
    assert champions_of(run) == {(0, 0), (1, 1)}
    assert apply_retention(run, "all", {(0, 0)}).outputs == 0
    freed = apply_retention(run, "champion", {(0, 0), (1, 1)}, upto_gen=1)
    assert (freed.outputs, freed.bytes) == (1, 150)
    assert not (run.repeat(1, 0, 1) / "out").exists() and (run.repeat(1, 1, 1) / "out").is_dir()
    assert (run.repeat(1, 0, 1)).is_dir(), "only the outputs go: the repeat's record and score stay"
    assert [p.parent.relative_to(run.path).as_posix() for p in sorted(run.path.glob("g*/c*/out"))] == \
        ["g0/c0", "g1/c1", "g2/c0", "g2/c1"]
    result = CliRunner().invoke(cli, ["gc", "--repo", str(run.repo_root)])
    assert result.exit_code == 0 and "removed the outputs of 2 candidates" in result.output, result.output
    assert sorted(p.parent.name for p in run.path.glob("g*/c*/out")) == ["c0", "c1"]
    result = CliRunner().invoke(cli, ["gc", run.run_id, "--repo", str(run.repo_root), "--keep", "none"])
    assert "removed the outputs of 2 candidates (250 B)" in result.output and not list(run.path.glob("g*/c*/out"))
    assert not list(run.path.glob("g*/c*/seed*/out"))
    assert json.loads((run.path / "run.json").read_text())["task"] == "toy"
