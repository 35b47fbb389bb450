"""Compute: where training jobs run. One interface (``Executor``), two executors.

``get_executor("local" | "ray", data_dir, ...)`` returns one: ``local`` runs jobs in a
thread pool on this machine (no Ray), ``ray`` runs each as a Ray task on a local instance
or on the cluster at ``address`` / ``RAY_ADDRESS``. Each is imported only when asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

from progenitor.compute.base import EventCallback, Executor, JobResult, TrainJob, execute_job
from progenitor.compute.pruning import PruneConfig
from progenitor.errors import UserError

__all__ = [
    "EXECUTORS",
    "EventCallback",
    "Executor",
    "JobResult",
    "PruneConfig",
    "TrainJob",
    "execute_job",
    "get_executor",
    "register_executor",
]

EXECUTORS = ("local", "ray")
_REGISTERED: dict[str, Callable[..., Executor]] = {}


def register_executor(name: str, factory: Callable[..., Executor]) -> None:
    """Make ``factory(data_dir, **options)`` the executor called ``name`` (tests register fakes)."""
    _REGISTERED[name] = factory


def get_executor(name: str, data_dir: Optional[Path], address: Optional[str] = None, **options: Any) -> Executor:
    """An executor by short name; ``address`` (a Ray cluster) only applies to ``ray``."""
    if name in _REGISTERED:
        return _REGISTERED[name](data_dir, **options)
    if name == "local":
        if address:
            raise UserError(f"a Ray address ({address}) was given but the executor is 'local'; use 'ray' or drop the address")
        from progenitor.compute.local import LocalExecutor

        return LocalExecutor(data_dir, **options)
    if name == "ray":
        from progenitor.compute.ray_executor import RayExecutor

        return RayExecutor(data_dir, address=address, **options)
    raise UserError(f"unknown executor {name!r}; choose one of: {', '.join([*EXECUTORS, *_REGISTERED])}")
