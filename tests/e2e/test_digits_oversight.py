"""The acceptance run of human oversight: an approver-mode run of the digits example stops at
each gate (its status says it waits, and for what) and goes on only after a decision, made in
turn from another shell (the CLI), from the Python API and from the web page in a real browser;
a second decision for a gate records nothing."""

from __future__ import annotations

import itertools
import json
import time

import pytest

import progenitor
from progenitor.errors import AlreadyDecided
from progenitor.oversight.audit import audit_log
from progenitor.run.rundir import RunDir
from tests.helpers.gating import cli, wait_for
from tests.helpers.records import status_json
from tests.ui.test_browser import Visitor, _run_id, browser, run_process, serve  # noqa: F401 - fixtures

pytestmark = [pytest.mark.slow, pytest.mark.browser]

APPROVER = "oversight: {mode: approver, poll_seconds: 0.2, approve_training_above: {cpu_hours: 0}}\n"
"""Every generation asks before training (its estimate is above 0) and before a promotion."""


@pytest.fixture
def digits(tmp_path):
    import git

    path = tmp_path / "digits"
    cli("init", "--example", "digits", str(path))
    spec = path / "progenitor.yaml"
    spec.write_text(spec.read_text() + APPROVER)
    repo = git.Repo(path)
    repo.git.add("progenitor.yaml")
    repo.git.commit("-q", "-m", "digits: a person approves", env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                                                                     "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})
    return path


def _trained(repo, run_id: str, gen: int) -> bool:
    return any((RunDir(repo, run_id).path / f"g{gen}").glob("c*/train.json"))


def test_an_approver_run_of_digits_goes_on_only_after_each_decision_from_cli_api_and_page(digits, browser, serve,
                                                                                          run_process, tmp_path):
    base, link = serve(digits)
    proc = run_process(digits)
    run_id = _run_id(digits)
    visitor = Visitor(browser, tmp_path / "screens")
    visitor.sign_in(base, link.split("token=")[1])  # as the OS user who started the page
    surfaces = itertools.cycle(["cli", "api", "web"])
    decided: list[tuple[str, str]] = []
    try:
        while True:
            waiting = wait_for(lambda: proc.poll() is not None or progenitor.pending(run_id, repo=digits),
                               timeout=600, what="a gate or the end of the run")
            if proc.poll() is not None:
                break
            [gate] = waiting
            # The driver opens the gate in the store, then marks its run waiting: a moment apart.
            status = wait_for(lambda: (s := status_json(run_id, repo=digits))["status"] == "waiting" and s,
                              timeout=30, what="the run's status to say it waits")
            assert status["waiting"]["gate"] == gate.gate
            assert status["waiting"]["description"] == gate.description and gate.description
            if gate.kind == "training":
                time.sleep(1.0)
                assert not _trained(digits, run_id, gate.gen), "nothing trains before the decision"
            surface = next(surfaces)
            if surface == "cli":
                cli("approve", run_id, "--repo", str(digits), "--comment", "from another shell")
            elif surface == "api":
                progenitor.decide(run_id, "approve", by="lab-tooling", repo=digits, comment="from the API")
            else:
                page = visitor.visit(f"{base}/inbox", f"{gate.gate.replace('/', '-')}-inbox")
                page.wait_for_selector(f"section.gate[data-gate='{gate.gate}']", timeout=60_000)
                page.click("section.gate button[value=approve]")
                page.wait_for_selector(".flash.ok")
                visitor.shot(f"{gate.gate.replace('/', '-')}-approved")
            with pytest.raises(AlreadyDecided, match="already decided"):
                progenitor.decide(run_id, "reject", by="late", comment="too late", repo=digits, gate=gate.gate)
            decided.append((gate.gate, surface))
            if gate.kind == "training":
                wait_for(lambda: _trained(digits, run_id, gate.gen) or proc.poll() is not None, timeout=300,
                         what=f"generation {gate.gen} to train once approved")
    finally:
        visitor.close()
    assert proc.wait(60) == 0, proc.stderr.read()
    assert not visitor.external
    assert len(decided) >= 3 and {s for _, s in decided} == {"cli", "api", "web"}
    status = status_json(run_id, repo=digits)
    assert status["status"] == "finished" and status["summary"]["generations"] == 3
    humans = [e for e in audit_log(digits).entries() if e["actor"].startswith("human:")]
    assert [(e["gate"], e["surface"]) for e in humans] == decided, "one entry per gate: the late rejections left none"
    assert not any(e["actor"] == "human:late" for e in humans)
    assert progenitor.verify_audit(digits).ok
    print(json.dumps({"gates": decided, "champion": status["summary"]["champion"],
                      "baseline": status["summary"]["baseline"]}))
