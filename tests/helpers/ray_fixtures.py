"""Fixtures and helpers for the compute tests: tree archives, outputs, processes by marker,
and one local Ray per session.

Register the fixture for every test module with, in ``tests/conftest.py``::

    from tests.helpers.ray_fixtures import ray_local  # noqa: F401

The local instance declares 2 CPUs and 2 *logical* GPUs, so that GPU scheduling is tested
on a machine without any. It is started the first time a test asks for it and reused by
every later one (an executor that finds Ray connected joins it and leaves it up).
"""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from progenitor.compute.base import JobResult, tree_archive  # noqa: F401 - re-exported for the tests

LOCAL_RAY = {"num_cpus": 2, "num_gpus": 2, "object_store_bytes": 256 << 20}


def outputs(result: JobResult) -> dict[str, str]:
    """The files a job brought back, ``{path: text}``."""
    with tarfile.open(fileobj=io.BytesIO(result.outputs_archive)) as tar:
        return {m.name: tar.extractfile(m).read().decode() for m in tar.getmembers() if m.isfile()}


def processes_with(marker: str) -> list[int]:
    """Processes whose command line holds ``marker`` (a test's own: no one else's)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            continue
    return found


@pytest.fixture
def ray_local():
    """A connected local Ray instance (2 CPUs, 2 logical GPUs), started once per session
    (``ray.init`` registers its own shutdown at interpreter exit)."""
    pytest.importorskip("ray")
    from progenitor.compute.ray_executor import RayConfig, connect

    connect(RayConfig(address=None, **LOCAL_RAY))
    import ray

    return ray
