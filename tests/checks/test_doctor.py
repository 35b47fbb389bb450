"""``progenitor doctor`` says what a real probe candidate did, so a sandbox that cannot run a
candidate, or cannot give it what the task needs, is a "no" line, never an inferred "ok"."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from progenitor.checks.probe import judge, probe_sandbox
from progenitor.cli import cli
from progenitor.sandbox.base import SandboxResult


def test_a_probe_whose_interpreter_cannot_run_says_so():
    report = probe_sandbox("process", {}, python="/nonexistent/python3")
    assert not report.ok and report.detail.startswith("the probe candidate did not run: exit code 127")


@pytest.mark.loop
def test_a_probe_that_cannot_import_what_the_task_needs_names_it():
    report = probe_sandbox("process", {}, imports=("numpy", "no-such-distribution-here"))
    assert not report.ok and "it could not import no-such-distribution-here (PackageNotFoundError" in report.detail


def test_a_probe_that_read_the_labels_is_not_sealed():
    line = ('probe-report: {"python": "/usr/bin/python3", "version": "3.11.2", "uid": 1000, "imports": {}, '
            '"labels": ["the-canary"], "data": "visible", "network": "cut"}')
    report = judge(SandboxResult(status="ok", stdout=line + "\n", isolation=["rlimits"]), "the-canary")
    assert not report.ok and "NOT SEALED: it read the holdout labels in its run directory" in report.detail


@pytest.mark.loop
def test_doctor_of_a_repo_whose_requirements_are_missing_says_no(tmp_path):
    (tmp_path / "requirements.txt").write_text("numpy\nno-such-distribution-here\n")
    result = CliRunner().invoke(cli, ["doctor", str(tmp_path)])
    process = next(line for line in result.output.splitlines() if "sandbox process" in line)
    assert " no " in process and "no-such-distribution" in result.output


@pytest.mark.loop
def test_doctor_measures_which_limits_hold():
    from progenitor.checks.limits_probe import probe_limits

    report = probe_limits("process", {})
    assert report.ok, report.detail
    assert "memory held (a memfd reached" in report.detail and "then oom" in report.detail, report.detail
    assert "cpus held (2 busy processes used" in report.detail, report.detail
    assert "processes held (" in report.detail, report.detail


def test_a_limit_that_did_not_hold_is_a_no():
    from progenitor.checks.limits_probe import read_probe

    escaped = "probe cpu 1.980\nprobe processes 128\n" + "".join(f"probe memory {n << 23}\n" for n in range(1, 65))
    report = read_probe(SandboxResult(status="ok", stdout=escaped))
    assert not report.ok
    assert "cpus NOT held (2 busy processes used 1.98 of 0.5 cores)" in report.detail
    assert "processes NOT held (128 forks under a limit of 32)" in report.detail
    assert "memory NOT held (a memfd reached 512 MiB under 128 MiB, then ok" in report.detail
