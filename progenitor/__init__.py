"""progenitor: AI agents engineer the next generation of a machine-learning model, safely.

The public API (imported lazily, so ``import progenitor`` is fast and has no side effects)::

    import progenitor
    repo = progenitor.ModelRepo("path/to/model-repo")
    run = repo.start(progenitor.RunOptions(generations=3))
    print(run.summary.champion, run.champion(), run.lineage().candidates)
    for event in repo.stream(progenitor.RunOptions(generations=1)):
        print(event.type)

The same as functions of a run id (``start_run``, ``get_lineage``, ``decide``, ...), which the
CLI and the page call; events are the models of ``progenitor.run.events``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    **{name: "progenitor.api" for name in (
        "ModelRepo", "Run", "start_run", "resume_run", "continue_run", "stop_run", "run_status", "list_runs", "get_lineage",
        "stream_run", "build_graph", "open_run", "decide", "pending", "revert", "adopt", "verify_audit")},
    "RunOptions": "progenitor.options",
    "RunSummary": "progenitor.run.summary",
    "RunStatus": "progenitor.run.status",
    "RunLineage": "progenitor.lineage.records",
    "Candidate": "progenitor.candidate",
    "Champion": "progenitor.candidate",
    "Event": "progenitor.run.events",
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
        ModelRepo,
        Run,
        adopt,
        build_graph,
        continue_run,
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
    from progenitor.candidate import Candidate, Champion
    from progenitor.errors import ProgenitorError, UserError
    from progenitor.lineage.records import RunLineage
    from progenitor.options import RunOptions
    from progenitor.run.events import Event
    from progenitor.run.status import RunStatus
    from progenitor.run.summary import RunSummary
    from progenitor.task.spec import TaskSpec, load_spec
