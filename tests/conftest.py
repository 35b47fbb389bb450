"""Shared fixtures. Every test gets its own run index (PROGENITOR_HOME) so nothing is
written to the real home directory, and no test can reach a real LLM provider."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def docker_required(config: pytest.Config) -> bool:
    """Must the docker tests run (fail when Docker is unusable) rather than skip?

    ``make test`` (and so CI) sets PROGENITOR_REQUIRE_DOCKER=1 after starting the daemon; a
    developer who selects the marker (``-m docker``) asks for them too."""
    if os.environ.get("PROGENITOR_REQUIRE_DOCKER") == "1":
        return True
    expr = config.option.markexpr or ""
    return "docker" in expr and "not docker" not in expr


def skip_unless_docker(config: pytest.Config, usable: bool, detail: str) -> None:
    """Skip a docker test on a machine without Docker; fail it where Docker is required."""
    if usable:
        return
    if docker_required(config):
        pytest.fail(f"Docker is required here but not usable: {detail} (run .ci/docker-setup.sh)")
    pytest.skip(f"no usable Docker here ({detail}); `make test` runs these with the daemon started")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("PROGENITOR_HOME", str(tmp_path_factory.mktemp("progenitor-home")))
    # Default-deny: a test that forgets to point the LLM at the local stand-in server fails.
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE"):
        monkeypatch.delenv(var, raising=False)
    yield


@pytest.fixture
def toy_repo(tmp_path) -> Path:
    from progenitor.testing import make_repo, toy_task_files

    return make_repo(tmp_path / "toy", toy_task_files())
