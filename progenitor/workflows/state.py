"""The graph's state, and the context its nodes close over.

The state holds only plain data (it is checkpointed after every node); the context holds
the live objects (repo, run directory, architect, executor) and is rebuilt on resume.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, TypedDict

from pydantic import BaseModel, ConfigDict

from progenitor.audit import AuditLog
from progenitor.lineage import Lineage
from progenitor.runs import RunDir
from progenitor.spec import TaskSpec


class RunState(TypedDict, total=False):
    run_id: str
    generation: int
    """The generation under way (1-based); 0 while preparing."""
    base: str
    """The commit the run started from: its spec, scorer and protected files are the trusted ones."""
    baseline: dict
    """{sha, metrics}: the human baseline, scored in prepare."""
    champion: dict
    """{sha, metrics, gen, k}: the best approved commit so far."""
    candidates: list[dict]
    """This generation's candidate records."""
    selection: Optional[dict]
    """What select picked: {k, value, improves, reason} or None."""
    decision: Optional[dict]
    """What oversight decided about the selection."""
    history: list[dict]
    """One summary per finished generation."""
    feedback: list[str]
    stop_reason: Optional[str]


class RunOptions(BaseModel):
    """How a run was started; saved in run.json so a resume runs the same way."""

    model_config = ConfigDict(extra="forbid")

    generations: Optional[int] = None
    """Overrides budget.generations."""
    candidates: Optional[int] = None
    """Overrides budget.candidates."""
    sandbox: Optional[str] = None
    """Overrides sandbox.backend: auto, process or docker."""
    executor: str = "ray"
    """ray (a local Ray instance, or the cluster at ray_address) or local (a thread pool, no Ray)."""
    ray_address: Optional[str] = None
    seed: Optional[int] = None
    """Overrides the task's seed for the search architect."""
    max_parallel: Optional[int] = None
    """Most candidates trained at once by the local executor (default: by CPUs)."""
    allow_unsealed: bool = False
    """Run even where the sandbox cannot hide the run's files (the holdout labels) from candidates:
    not root, no bubblewrap, no Docker. Loud: warned at the start, recorded in run.json and the summary."""


@dataclass
class RunContext:
    run: RunDir
    lineage: Lineage
    spec: TaskSpec
    options: RunOptions
    backend: str
    """The resolved sandbox backend."""
    backend_options: dict
    audit: AuditLog
    architect_factory: Callable[["RunContext"], Any]
    constitution: Any = None
    """The base commit's constitution, loaded once (``nodes.constitution``)."""
    ledger: Any = None
    """The run's Ledger: CPU/GPU/wall seconds per candidate, LLM spend."""
    listeners: list[Callable[[dict], None]] = field(default_factory=list)
    _architect: Any = None
    executor: Any = None

    @property
    def architect(self):
        if self._architect is None:
            self._architect = self.architect_factory(self)
        return self._architect

    def emit(self, kind: str, **payload: Any) -> None:
        event = self.run.emit(kind, **payload)
        for listener in self.listeners:
            listener(event)
