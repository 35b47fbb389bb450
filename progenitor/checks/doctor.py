"""``progenitor doctor``: what this machine can do, one line per capability, each line the
result of something it just did: a sandbox line is a probe candidate run through that very
sandbox (``sandbox.probe``), a library line is an import, a tool line is that tool run."""

from __future__ import annotations

import importlib
import platform
import shutil
import subprocess
import sys
from typing import Callable

from pydantic import BaseModel

from progenitor.errors import ProgenitorError


class Capability(BaseModel):
    """One line of `progenitor doctor`: a capability of this machine, probed for real."""

    name: str
    ok: bool
    detail: str


def _safe(name: str, fn: Callable[[], Capability]) -> Capability:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - doctor reports, it does not crash
        return Capability(name=name, ok=False, detail=f"{type(exc).__name__}: {exc}" if name not in str(exc) else str(exc))


def _python() -> Capability:
    ok = sys.version_info >= (3, 10)
    return Capability(name="python", ok=ok, detail=f"{platform.python_version()} ({sys.executable})")


def _git() -> Capability:
    path = shutil.which("git")
    if not path:
        return Capability(name="git", ok=False, detail="git not found on PATH; install it")
    version = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
    return Capability(name="git", ok=True, detail=version)


def _process_sandbox(repo) -> Capability:
    from progenitor.checks.probe import probe_sandbox, requirement_names
    from progenitor.sandbox.process import ProcessSandbox

    sandbox = ProcessSandbox()
    mode, why = sandbox.mode()
    words = sandbox.sealed()[1]
    # The plain child is probed too (opted in here only): the line then shows what it can read.
    report = probe_sandbox("process", {"allow_unsealed": True}, imports=tuple(requirement_names(repo)))
    if mode == "none":
        return Capability(name="sandbox process", ok=False,
                     detail=f"{words}: a run refuses it without --allow-unsealed; {report.detail}")
    return Capability(name="sandbox process", ok=report.ok, detail=f"{words}; {report.detail}")


def _docker_sandbox(repo) -> Capability:
    from progenitor.checks.probe import probe_sandbox, requirement_names
    from progenitor.sandbox.docker import DockerSandbox
    from progenitor.sandbox.docker.images import DEFAULT_BASE, task_image

    image = task_image(repo) if repo is not None else DEFAULT_BASE
    daemon = DockerSandbox(image=image).check()  # asks the daemon: its version, the image, its runtimes
    if not daemon.available:
        return Capability(name="sandbox docker", ok=False, detail=daemon.detail)
    # The base image has only python3; a task image's venv has the `python` a task's commands name.
    report = probe_sandbox("docker", {"image": image}, python="python" if repo is not None else "python3",
                           imports=tuple(requirement_names(repo)))
    return Capability(name="sandbox docker", ok=report.ok, detail=f"{daemon.detail}; {report.detail}")


def _limits(backend: str) -> Capability:
    """Which memory, CPU and process limits hold, measured by the limits probe (see ``limits_probe``)."""
    from progenitor.checks.limits_probe import probe_limits
    from progenitor.sandbox import get_sandbox

    name = f"limits {backend}"
    options: dict = {}
    if backend == "docker":
        from progenitor.sandbox.docker.images import DEFAULT_BASE

        options = {"image": DEFAULT_BASE}
    else:
        options = {"allow_unsealed": True}
    check = get_sandbox(backend, **options).check()
    if not check.available:
        return Capability(name=name, ok=False, detail=check.detail)
    how = ", ".join(f"{limit} by {way}" for limit, way in check.limits.held.items()) or "none held by the kernel"
    report = probe_limits(backend, options)
    return Capability(name=name, ok=report.ok, detail=f"{how}; measured: {report.detail}")


def _module(name: str, why: str) -> Callable[[], Capability]:
    def check() -> Capability:
        module = importlib.import_module(name)
        return Capability(name=name, ok=True, detail=f"{getattr(module, '__version__', '?')} imports: {why}")
    return check


def _gpus() -> Capability:
    if not shutil.which("nvidia-smi"):
        return Capability(name="gpus", ok=True, detail="none found (no nvidia-smi); candidates train on CPUs")
    out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout.strip()
    return Capability(name="gpus", ok=True, detail=out or "nvidia-smi found no GPU")


def _task_image(repo) -> Callable[[], Capability]:
    def check() -> Capability:
        from progenitor.sandbox.docker.images import connect, image_exists, missing_image_message, task_image

        name = task_image(repo)
        if image_exists(connect(), name):
            return Capability(name="task image", ok=True, detail=f"{name} built for {repo}")
        return Capability(name="task image", ok=False, detail=missing_image_message(name))
    return check


def checks(repo=None) -> list[Capability]:
    """Every check; with ``repo`` (a model repo), also whether its Docker task image is built and
    whether the models of its ``llm:`` section answer (``llm_checks``)."""
    items = [("python", _python), ("git", _git), ("sandbox process", lambda: _process_sandbox(repo)),
             ("limits process", lambda: _limits("process")),
             ("sandbox docker", lambda: _docker_sandbox(repo)), ("limits docker", lambda: _limits("docker")),
             ("ray", _module("ray", "distributes training (--executor ray)")),
             ("torch", _module("torch", "the bundled examples train PyTorch models")), ("gpus", _gpus)]
    if repo is not None:
        items.append(("task image", _task_image(repo)))
    results = [_safe(name, fn) for name, fn in items]
    if repo is not None:
        results += _safe_list("llm", lambda: llm_checks(repo))
    return results


def llm_checks(repo) -> list[Capability]:
    """Each model of the repo's ``llm:`` section, called once, and what caps the spend. No
    ``llm:`` section: one line saying the offline agents run, and no call is made."""
    from progenitor.llm.probe import probe_model
    from progenitor.task.spec import load_spec

    try:
        spec = load_spec(repo)
    except ProgenitorError as exc:
        return [Capability(name="llm", ok=False, detail=str(exc))]
    if spec.llm is None or not spec.llm.models():
        return [Capability(name="llm", ok=True, detail="none configured: the offline agents run (no network, no key)")]
    lines = [Capability(name=f"llm {probe.model}", ok=probe.ok, detail=probe.detail)
             for probe in (probe_model(ep, spec.llm) for ep in spec.llm.models())]
    cap = spec.budget.dollars
    detail = (f"budget.dollars {cap:g}: no LLM call starts once it is spent" if cap is not None
              else "no budget.dollars: LLM spend is counted, not capped")
    return [*lines, Capability(name="llm budget", ok=True, detail=detail)]


def models_failed(results: list[Capability]) -> list[Capability]:
    """The lines of models that did not answer (``doctor`` then exits non-zero). Only the lines
    of models: a repository with no readable spec (its ``llm`` line) has no model to ask."""
    return [c for c in results if c.name.startswith("llm ") and c.name != "llm budget" and not c.ok]


def _safe_list(name: str, fn: Callable[[], list[Capability]]) -> list[Capability]:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - doctor reports, it does not crash
        return [Capability(name=name, ok=False, detail=f"check failed: {exc}")]


def print_checks(console, results: list[Capability]) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table("check", "", "detail", title="progenitor doctor")
    for c in results:  # escaped: a detail may hold brackets (and a probe's output) that rich would read as markup
        table.add_row(c.name, "[green]ok[/green]" if c.ok else "[red]no[/red]", escape(c.detail))
    console.print(table)
