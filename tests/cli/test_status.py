"""``progenitor status RUN``: the run itself (its gate, generation, baseline, champion and
spend), not only the row of the list; the detail used to be there only with --json."""

from __future__ import annotations

import json

import pytest

import progenitor
from progenitor.options import RunOptions
from tests.helpers.gating import OPTIONS, cli, toy_repo

pytestmark = pytest.mark.loop  # runs the loop or a sandbox end to end: `make test` runs it, `make test-fast` does not


def test_status_of_a_waiting_run_shows_its_gate_and_where_it_stands(tmp_path):
    repo = toy_repo(tmp_path / "repo", "approver", generations=2)
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS), detach=True)
    assert summary.status == "waiting"
    shown = cli("status", summary.run_id, "--repo", str(repo), env={"COLUMNS": "200"}).stdout
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in shown.splitlines() if line.count("│") >= 3}
    assert rows["status"] == "waiting"
    assert rows["gate"].startswith(f"{summary.waiting['gate']}: ")
    assert rows["generation"] == "1 of 2"
    assert rows["baseline error"].startswith(f"{summary.baseline:.4f}")
    assert rows["champion error"].startswith(f"{summary.baseline:.4f} (the baseline, commit ")
    assert rows["candidates"] == "2 scored"
    assert "CPU-s" in rows["spend"]
    assert f"progenitor approve {summary.run_id}" in shown


def test_status_of_a_finished_run_shows_its_champion_against_the_baseline(tmp_path):
    repo = toy_repo(tmp_path / "repo", "auto")
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS))
    shown = cli("status", summary.run_id, "--repo", str(repo), env={"COLUMNS": "200"}).stdout
    champion = next(line for line in shown.splitlines() if "champion error" in line)
    assert f"{summary.champion:.4f} (g1/c" in champion and summary.champion_commit[:10] in champion
    assert f"{summary.champion - summary.baseline:+.4f} on the baseline" in champion
    data = json.loads(cli("status", summary.run_id, "--repo", str(repo), "--json").stdout)
    assert data["champion_commit"] == summary.champion_commit and data["metric"] == "error"
    assert data["champion_name"].startswith("g1/c") and data["counts"] == {"scored": 2}
    listed = cli("status", "--repo", str(repo)).stdout
    assert summary.run_id in listed and "champion error" not in listed
