"""progenitor: AI agents engineer the next generation of a machine-learning model, safely.

The public API (imported lazily, so ``import progenitor`` is fast and has no side effects)::

    import progenitor
    summary = progenitor.start_run("path/to/model-repo", progenitor.RunOptions(generations=3))
    progenitor.resume_run(summary.run_id, repo="path/to/model-repo")
    progenitor.run_status(summary.run_id, repo="path/to/model-repo")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "start_run": "progenitor.api",
    "resume_run": "progenitor.api",
    "stop_run": "progenitor.api",
    "run_status": "progenitor.api",
    "list_runs": "progenitor.api",
    "get_lineage": "progenitor.api",
    "stream_run": "progenitor.api",
    "build_graph": "progenitor.api",
    "open_run": "progenitor.api",
    "decide": "progenitor.api",
    "pending": "progenitor.api",
    "revert": "progenitor.api",
    "adopt": "progenitor.api",
    "verify_audit": "progenitor.api",
    "RunOptions": "progenitor.workflows.state",
    "RunSummary": "progenitor.workflows.runner",
    "TaskSpec": "progenitor.task.spec",
    "load_spec": "progenitor.task.spec",
    "ProgenitorError": "progenitor.errors",
    "UserError": "progenitor.errors",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'progenitor' has no attribute {name!r}")


if TYPE_CHECKING:  # pragma: no cover
    from progenitor.api import (
        adopt,
        build_graph,
        decide,
        get_lineage,
        list_runs,
        open_run,
        pending,
        resume_run,
        revert,
        run_status,
        start_run,
        stop_run,
        stream_run,
        verify_audit,
    )
    from progenitor.errors import ProgenitorError, UserError
    from progenitor.options import RunOptions
    from progenitor.task.spec import TaskSpec, load_spec
    from progenitor.workflows.runner import RunSummary
