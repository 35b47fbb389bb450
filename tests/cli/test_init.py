"""``progenitor init``: a template for an existing repo, or a fresh repo from an example."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.loop
def test_init_refuses_non_empty_dir_and_unknown_example(tmp_path):
    cli = [sys.executable, "-m", "progenitor.cli"]
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    proc = subprocess.run([*cli, "init", "--example", "digits", str(tmp_path / "full")], capture_output=True, text=True)
    assert proc.returncode == 2 and "not empty" in proc.stderr
    proc = subprocess.run([*cli, "init", "--example", "nope", str(tmp_path / "new")], capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown example 'nope'; choose one of: charlm, digits" in proc.stderr


@pytest.mark.loop
def test_init_template_writes_valid_spec_and_constitution(tmp_path):
    from progenitor.task.constitution import load_constitution
    from progenitor.task.spec import load_spec

    cli = [sys.executable, "-m", "progenitor.cli"]
    proc = subprocess.run([*cli, "init", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert f"then: progenitor check {tmp_path}" in proc.stdout, "init points to check before run"
    spec = load_spec(tmp_path)
    assert spec.safety.constitution == "constitution.yaml"
    assert load_constitution(tmp_path, spec.safety.constitution).principles
    again = subprocess.run([*cli, "init", str(tmp_path)], capture_output=True, text=True)
    assert again.returncode == 2 and "exists already" in again.stderr


def test_init_of_an_example_points_to_check_first(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "progenitor.cli", "init", "--example", "digits", str(tmp_path / "d")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert f"next: progenitor check {tmp_path / 'd'}" in proc.stdout and proc.stdout.index("check") < proc.stdout.index(
        "progenitor run")
