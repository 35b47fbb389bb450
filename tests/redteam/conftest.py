"""Fixtures of the red-team suite: the sandbox backend is a parameter, and each
(backend, layer, group) runs through the real loop once per session, shared by its tests.

At the end, the suite prints how many attacks it tried and how many were stopped (the hooks are
in ``tests/conftest.py``: under xdist only the root conftest is loaded by the controlling process,
which prints the summary)."""

from __future__ import annotations

import uuid

import pytest

from tests.redteam.attacks import ATTACKS
from tests.redteam.harness import Outcome, require_backend, run_group

_RUNS: dict[tuple, Outcome] = {}


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
