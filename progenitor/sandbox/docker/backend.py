"""The docker backend: every candidate in its own hardened, throwaway container.

The container has no network (unless the spec asks), no capabilities, no way to gain
privileges, a read-only root with a tmpfs ``/tmp``, a non-root user, and the memory /
CPU / pids limits of the spec, held by the daemon's cgroups (``enforcement`` says which
the daemon reports it can hold). The candidate's tree is mounted read-write at
``/sandbox/tree`` (the working directory), its outputs at ``/sandbox/out`` and the data
read-only at ``/sandbox/data``; the command template is filled with those paths. What the
container is: ``container``; how a run is watched and judged: ``supervise``.

Containers carry the label ``progenitor=1`` (plus run and candidate) so that ``sweep`` can
remove what a crashed run left behind; ``run`` removes its container whatever happens.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Optional

from progenitor.errors import SandboxError
from progenitor.sandbox.base import Enforcement, LineCallback, SandboxCheck, SandboxResult, SandboxSpec
from progenitor.sandbox.docker.container import LABEL, container_options, grant_access, isolation
from progenitor.sandbox.docker.images import DEFAULT_BASE, connect, image_exists, missing_image_message
from progenitor.sandbox.docker.supervise import supervise

__all__ = ["DockerSandbox"]


class DockerSandbox:
    """Runs a spec in a fresh container of ``image`` (default: the base image)."""

    name = "docker"

    def __init__(self, image: Optional[str] = None, client: Any = None, **_ignored: Any):
        self.image = image or DEFAULT_BASE
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = connect()
        return self._client

    def check(self) -> SandboxCheck:
        try:
            client = self.client
            info = client.info()
        except SandboxError as exc:
            return SandboxCheck(backend=self.name, available=False, detail=str(exc))
        gpu = "nvidia" in (info.get("Runtimes") or {})
        gpu_text = "GPU support (nvidia runtime)" if gpu else "no GPU support (no nvidia runtime)"
        daemon = f"Docker {info.get('ServerVersion', '?')} answers"
        if not image_exists(client, self.image):
            return SandboxCheck(
                backend=self.name, available=False,
                detail=f"{daemon}, but {missing_image_message(self.image)}; {gpu_text}",
            )
        return SandboxCheck(
            backend=self.name, available=True, isolation=isolation(network=False), limits=enforcement(info),
            detail=f"{daemon}, image {self.image} present, {gpu_text}",
        )

    def run(
        self,
        spec: SandboxSpec,
        on_line: Optional[LineCallback] = None,
        cancel: Optional[threading.Event] = None,
    ) -> SandboxResult:
        import docker
        import requests

        started = time.monotonic()
        container = self.create(spec)
        try:
            return supervise(self.client.api, container, spec, on_line, cancel, started)
        except (docker.errors.DockerException, requests.RequestException) as exc:
            # E.g. someone else's sweep removed the container, or the daemon went away.
            raise SandboxError(f"docker failed while running sandbox container {container.name}: {exc}") from None
        finally:
            _remove(container)

    def create(self, spec: SandboxSpec) -> Any:
        """Create (not start) the container for ``spec``; the caller must remove it."""
        import docker

        if not image_exists(self.client, self.image):
            raise SandboxError(missing_image_message(self.image))
        user = grant_access(spec)
        try:
            return self.client.containers.create(self.image, **container_options(spec, user))
        except docker.errors.APIError as exc:
            raise SandboxError(f"docker could not create the sandbox container: {exc.explanation or exc}") from None

    def sweep(self, run: Optional[str] = None) -> int:
        """Remove every progenitor container (of ``run`` only, if given); returns how many."""
        selector = [f"{LABEL}=1"] + ([f"{LABEL}.run={run}"] if run else [])
        leftovers = self.client.containers.list(all=True, ignore_removed=True, filters={"label": selector})
        if run is None:  # and what an interrupted `progenitor sandbox build` left
            builds = self.client.containers.list(all=True, ignore_removed=True, filters={"label": [f"{LABEL}.build"]})
            leftovers += [c for c in builds if c.labels.get(f"{LABEL}.build")]
        for container in leftovers:
            _remove(container)
        return len(leftovers)


def enforcement(info: dict) -> Enforcement:
    """Which limits the daemon's cgroups hold, as ``docker info`` reports its kernel's support."""
    version = f"cgroup v{info.get('CgroupVersion') or '?'}"
    found = Enforcement()
    for limit, key, how in (("memory", "MemoryLimit", "memory controller (shared memory and tmpfs counted)"),
                            ("cpus", "CpuCfsQuota", "CPU quota (CFS)"), ("processes", "PidsLimit", "pids controller")):
        if info.get(key):
            found.held[limit] = f"{version} {how}" + ("" if limit != "memory" or info.get("SwapLimit")
                                                      else ", but no swap limit: it may swap past it")
        else:
            found.not_held[limit] = f"the Docker daemon reports no {key} support"
    return found


def _remove(container: Any) -> None:
    try:
        container.remove(force=True)
    except Exception:  # noqa: BLE001 - already gone (removed, or swept by another process)
        pass
