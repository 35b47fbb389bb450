"""Shared fixtures. Every test gets its own run index (PROGENITOR_HOME) so nothing is
written to the real home directory, and no test can reach a real LLM provider."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


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
