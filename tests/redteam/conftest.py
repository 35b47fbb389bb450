"""Fixtures of the red-team suite: the sandbox backend is a parameter, and each
(backend, layer, group) runs through the real loop once per session, shared by its tests.

At the end, the suite prints how many attacks it tried and how many were stopped."""

from __future__ import annotations

import uuid
from collections import defaultdict

import pytest

from tests.redteam.attacks import ATTACKS
from tests.redteam.harness import Outcome, require_backend, run_group

_RUNS: dict[tuple, Outcome] = {}
_TALLY: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(lambda: {"tried": [], "stopped": []})


@pytest.fixture(scope="session")
def redteam_token() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture(scope="session")
def redteam_run(tmp_path_factory, redteam_token, request):
    """``redteam_run(backend, layer, group)`` -> the Outcome of that run (run once, then cached)."""

    def get(backend: str, layer: str, group: str) -> Outcome:
        require_backend(backend, request)
        key = (backend, layer, group)
        if key not in _RUNS:
            attacks = [a for a in ATTACKS if a.run_group == group]
            root = tmp_path_factory.mktemp(f"redteam-{backend}-{layer}-{group}")
            _RUNS[key] = run_group(root, layer, attacks, backend, redteam_token)
        return _RUNS[key]

    return get


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Each attack's report carries what the tally needs (under xdist the reports travel to
    the controlling process, which prints the summary; the items stay in the workers)."""
    report = (yield).get_result()
    spec = getattr(item, "callspec", None)
    if spec is not None and "attack" in spec.params and "layer" in spec.params:
        report.user_properties.append(("redteam", (spec.params["backend"], spec.params["layer"],
                                                   spec.params["attack"].name)))


def pytest_runtest_logreport(report):
    attack = dict(report.user_properties).get("redteam")
    if attack is None:
        return
    backend, layer, name = attack
    if report.when == "call" or (report.when == "setup" and report.failed):
        tally = _TALLY[(backend, layer)]
        tally["tried"].append(name)
        if report.when == "call" and report.passed and not hasattr(report, "wasxfail"):
            tally["stopped"].append(name)


def pytest_terminal_summary(terminalreporter):
    if not _TALLY:
        return
    terminalreporter.section("red team")
    for (backend, layer), tally in sorted(_TALLY.items()):
        missed = sorted(set(tally["tried"]) - set(tally["stopped"]))
        line = (f"{backend} sandbox, {layer} layer: {len(tally['tried'])} attacks tried, "
                f"{len(tally['stopped'])} stopped")
        terminalreporter.write_line(line + (f"; NOT stopped: {', '.join(missed)}" if missed else ""))
