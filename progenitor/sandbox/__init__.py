"""Sandboxes: where candidate code runs. One interface, several backends.

``get_sandbox("process" | "docker" | "auto")`` returns a backend; ``auto`` takes Docker
when a daemon answers and its image exists, else the process backend, and says which.
"""

from __future__ import annotations

from typing import Any

from progenitor.errors import SandboxError, UserError
from progenitor.sandbox.base import (
    Limits,
    Mount,
    Sandbox,
    SandboxCheck,
    SandboxResult,
    SandboxSpec,
)

__all__ = [
    "BACKENDS",
    "Limits",
    "Mount",
    "Sandbox",
    "SandboxCheck",
    "SandboxResult",
    "SandboxSpec",
    "get_sandbox",
    "resolve_backend",
]

BACKENDS = ("process", "docker")


def _make(name: str, **options: Any) -> Sandbox:
    if name == "process":
        from progenitor.sandbox.process import ProcessSandbox

        return ProcessSandbox(**options)
    if name == "docker":
        from progenitor.sandbox.docker import DockerSandbox

        return DockerSandbox(**options)
    raise UserError(f"unknown sandbox backend {name!r}; choose one of: auto, {', '.join(BACKENDS)}")


def resolve_backend(name: str, **options: Any) -> tuple[str, str]:
    """Turn ``auto`` into a concrete backend name and check that it can run; returns (name, why).

    ``auto`` falls back to the process backend; an explicit ``docker`` that cannot run (no
    daemon, no image) is a ``SandboxError`` saying what is missing.
    """
    if name != "auto":
        if name not in BACKENDS:
            raise UserError(f"unknown sandbox backend {name!r}; choose one of: auto, {', '.join(BACKENDS)}")
        if name == "docker":
            check = _make("docker", **options).check()
            if not check.available:
                raise SandboxError(f"the docker sandbox cannot run this task: {check.detail}")
        return name, "asked for"
    try:
        check = _make("docker", **options).check()
    except Exception as exc:  # noqa: BLE001 - any failure to reach Docker means: not docker
        return "process", f"docker unavailable ({exc})"
    if check.available:
        return "docker", check.detail
    return "process", f"docker unavailable ({check.detail})"


def get_sandbox(name: str = "auto", **options: Any) -> Sandbox:
    """A sandbox backend by short name: auto, process or docker (a concrete name is not
    checked again here: a worker runs many jobs on a backend resolved once per run)."""
    if name == "auto":
        name, _ = resolve_backend(name, **options)
    return _make(name, **options)
