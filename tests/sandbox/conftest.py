"""Fixtures of the sandbox tests: every backend, and a fresh tree / out / data per test.

The ``sandbox`` fixture runs each conformance test against every backend: ``process`` as
it picks its isolation here (bubblewrap when it works), ``process-unshare`` (the fallback
without bubblewrap as root: the same whitelist view, built in our own mount namespace),
``process-plain`` (the plain child, meaningful as root, where it still drops to an
unprivileged uid) and ``docker`` (marked ``docker``: CI selects it with ``-m docker`` next
to a real daemon).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pytest

from progenitor.sandbox.base import Limits, Sandbox, SandboxResult, SandboxSpec

# The default suite runs the backend this machine picks; the fallbacks are slow-marked (CI runs them all).
BACKENDS = ["process", pytest.param("process-unshare", marks=pytest.mark.slow),
            pytest.param("process-plain", marks=pytest.mark.slow), pytest.param("docker", marks=pytest.mark.docker)]


def make_sandbox(name: str, request: pytest.FixtureRequest) -> Sandbox:
    if name == "process":
        from progenitor.sandbox.process import ProcessSandbox

        return ProcessSandbox()
    if name in ("process-plain", "process-unshare"):
        if os.geteuid() != 0:
            pytest.skip(f"{name} drops root to hide the host's files: only root runs it")
        from progenitor.sandbox.process import ProcessSandbox

        return ProcessSandbox(isolation="none" if name == "process-plain" else "unshare")
    from progenitor.sandbox.docker import DockerSandbox
    from tests.conftest import skip_unless_docker

    sandbox = DockerSandbox()
    check = sandbox.check()
    skip_unless_docker(request.config, check.available, check.detail)
    return sandbox


@pytest.fixture(params=BACKENDS)
def sandbox(request: pytest.FixtureRequest) -> Sandbox:
    return make_sandbox(request.param, request)


@dataclass
class Box:
    """A job's directories as ``execute_job`` lays them out, and a runner for one sandbox."""

    sandbox: Sandbox
    base: Path
    tree: Path
    out: Path
    data: Path

    def spec(self, command: str, limits: Optional[dict] = None, **fields: Any) -> SandboxSpec:
        defaults = {"wall_time": 20.0}
        return SandboxSpec(
            command=command, tree=self.tree, out=self.out, data=self.data,
            limits=Limits(**{**defaults, **(limits or {})}), **fields,
        )

    def run(self, command: str, limits: Optional[dict] = None, on_line=None,
            cancel: Optional[threading.Event] = None, **fields: Any) -> SandboxResult:
        return self.sandbox.run(self.spec(command, limits, **fields), on_line=on_line, cancel=cancel)


def make_box(sandbox: Sandbox) -> Box:
    # Like execute_job: a world-searchable base, so an unprivileged uid can reach its dirs
    # (pytest's own tmp_path is closed to other users).
    base = Path(tempfile.mkdtemp(prefix="progenitor-sbx-test-"))
    os.chmod(base, 0o755)
    tree, out, data = base / "tree", base / "out", base / "data"
    for path in (tree, out, data):
        path.mkdir()
    (tree / "train.py").write_text("print('training')\n")
    (data / "train.txt").write_text("visible data\n")
    return Box(sandbox=sandbox, base=base, tree=tree, out=out, data=data)


@pytest.fixture
def box_for():
    """A factory of boxes for a given sandbox; each is removed after the test."""
    made: list[Box] = []

    def factory(sandbox: Sandbox) -> Box:
        made.append(make_box(sandbox))
        return made[-1]

    yield factory
    for one in made:
        shutil.rmtree(one.base, ignore_errors=True)


@pytest.fixture
def box(sandbox: Sandbox, box_for) -> Box:
    return box_for(sandbox)


@pytest.fixture
def host_dir():
    """A directory outside every sandbox dir, as a host would have one (mode 0755)."""
    path = Path(tempfile.mkdtemp(prefix="progenitor-sbx-host-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)

