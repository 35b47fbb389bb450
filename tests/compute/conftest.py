"""The executor conformance suite's fixture: every executor, one test body.

``local`` always; ``ray`` (marked ``ray``) on the session's local Ray instance, which
declares 2 CPUs. A new executor is one more entry in ``EXECUTORS``."""

from __future__ import annotations

from pathlib import Path

import pytest

from progenitor.compute import get_executor
from tests.helpers.ray_fixtures import ray_local  # noqa: F401 - the fixture, for the ray entry

EXECUTORS = ["local", pytest.param("ray", marks=pytest.mark.ray)]


@pytest.fixture(params=EXECUTORS)
def make_executor(request, tmp_path):
    """``make_executor(data_dir)`` -> an executor of the parameter's kind, closed after the test."""
    made = []
    if request.param == "ray":
        request.getfixturevalue("ray_local")

    def make(data_dir: Path):
        options = {"max_parallel": 2} if request.param == "local" else {"cache_dir": str(tmp_path / "ray-cache")}
        executor = get_executor(request.param, data_dir, **options)
        made.append(executor)
        return executor

    yield make
    for executor in made:
        executor.close()
