"""How a run is started: the options every surface (CLI, API, page) passes, saved in the run
so that a resume runs the same way."""

from __future__ import annotations

from typing import Optional

from pydantic import BaseModel, ConfigDict

__all__ = ["RunOptions"]


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
    architect: Optional[str] = None
    """Overrides agents.architect: a registered architect's name."""
    coder: Optional[str] = None
    """Overrides agents.coder: a registered coder's name."""
    store: Optional[str] = None
    """A team's decision store (``postgresql://user@host/db``): gates, decisions, accounts, the audit
    log and LangGraph's checkpoints go there, shared with every machine that names it. None: the
    repo's own SQLite files. Saved without its password (libpq reads PGPASSWORD or ~/.pgpass)."""
    allow_unsealed: bool = False
    """Run even where the sandbox cannot hide the run's files (the holdout labels) from candidates:
    not root, no bubblewrap, no Docker. Loud: warned at the start, recorded in run.json and the summary."""
    preflight: bool = True
    """Before preparing data, ask each configured language model for one token (``--no-preflight``:
    only their keys' variables are checked)."""
    allow_unenforced_limits: bool = False
    """Run even where the kernel does not hold the task's memory, CPU or process limit for the
    sandbox (the process backend without root or a delegated cgroup v2 subtree). Loud: warned at
    the start, recorded in run.json and the summary, with the limits that were not held."""
