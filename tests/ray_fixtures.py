"""Fixtures and helpers for the compute tests: tree archives, and one local Ray per session.

Register the fixture for every test module with, in ``tests/conftest.py``::

    from ray_fixtures import ray_local  # noqa: F401

The local instance declares 2 CPUs and 2 *logical* GPUs, so that GPU scheduling is tested
on a machine without any. It is started the first time a test asks for it and reused by
every later one (an executor that finds Ray connected joins it and leaves it up).
"""

from __future__ import annotations

import io
import tarfile
import time

import pytest

LOCAL_RAY = {"num_cpus": 2, "num_gpus": 2, "object_store_bytes": 256 << 20}


def tree_archive(files: dict[str, str]) -> bytes:
    """A tar archive of a candidate tree made of ``{path: text}``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def ray_local():
    """A connected local Ray instance (2 CPUs, 2 logical GPUs), started once per session
    (``ray.init`` registers its own shutdown at interpreter exit)."""
    pytest.importorskip("ray")
    from progenitor.compute.ray_executor import RayConfig, connect

    connect(RayConfig(address=None, **LOCAL_RAY))
    import ray

    return ray
