"""What a run is doing, read from its directory alone (no graph, no lock): the status every
surface shows (``progenitor status``, the page, ``progenitor.run_status``)."""

from __future__ import annotations

from typing import Optional

from pydantic import BaseModel

from progenitor.candidate import Champion
from progenitor.run.events import GenerationEnd, NodeStart, RunStart
from progenitor.run.processes import alive
from progenitor.run.rundir import RunDir
from progenitor.run.summary import RunSummary

__all__ = ["RunStatus", "status_of"]


class RunStatus(BaseModel):
    """One run as its files tell it."""

    id: str
    repo: str
    task: Optional[str] = None
    created: Optional[str] = None
    status: Optional[str] = None
    """running, waiting (at a gate), finished, stalled, stopped, failed, or interrupted (its process is gone)."""
    stop_reason: Optional[str] = None
    backend: Optional[str] = None
    base: Optional[str] = None
    generation: int = 0
    """The generation under way (or last reached)."""
    metric: Optional[str] = None
    """The objective's metric."""
    baseline_value: Optional[float] = None
    """The human baseline's value of the objective, once scored."""
    champion_value: Optional[float] = None
    """The champion's value of the objective after the last generation (the baseline's before)."""
    summary: Optional[RunSummary] = None
    """Its closing summary, once it finished, stopped or waits."""
    baseline: Optional[Champion] = None
    ledger: Optional[dict] = None
    """What it has spent: CPU-, GPU- and wall-seconds, LLM dollars and tokens (``Ledger.summary``)."""
    waiting: Optional[dict] = None
    """The gate it waits at: gate, kind, gen, description."""
    waiting_process: Optional[bool] = None
    """Whether a process still waits at that gate (and goes on by itself once decided)."""
    generations_budget: Optional[int] = None
    """How many generations the run was started for."""
    champion_name: Optional[str] = None
    """The champion's candidate (``g2/c1``), or ``baseline`` while nothing beat it (one run's status only)."""
    champion_commit: Optional[str] = None
    """The champion's commit now (one run's status only)."""
    champion_test_value: Optional[float] = None
    """The champion's value on the final test split, when the task has one (one run's status only)."""
    counts: dict[str, int] = {}
    """Candidates so far by status (one run's status only)."""
    mode: Optional[str] = None
    """``search.mode``: generations or async."""
    slots: Optional[int] = None
    """Training slots of its executor."""
    idle_slot_seconds: Optional[float] = None
    """``slots x its time so far`` minus the training seconds, as of its ledger's last save."""
    idle_by_generation: dict[int, float] = {}
    """Idle slot-seconds of each finished generation."""


def _ledger(run: RunDir, meta: dict) -> Optional[dict]:
    """What the run has spent, from its ledger file (written whenever a node spent, so an interrupted
    run shows it too); the copy in run.json when there is no file."""
    if run.ledger.exists():
        from progenitor.run.ledger import load_ledger

        return load_ledger(run.ledger)
    return meta.get("ledger")


def status_of(run: RunDir) -> RunStatus:
    meta = run.meta
    status, stop_reason = meta.get("status"), meta.get("stop_reason")
    if status == "running" and not alive(meta.get("pid")):
        # Its process is gone (killed, or the machine went down): the checkpoints remain.
        status, stop_reason = "interrupted", "its process is gone; 'progenitor resume' continues it"
    events = run.events()
    last_gen = max((e.gen for e in events if isinstance(e, NodeStart)), default=0)
    started = next((e for e in events if isinstance(e, RunStart)), None)
    metric = started.metric or None if started else None
    baseline = meta.get("baseline") or {}
    baseline_value = (baseline.get("metrics") or {}).get(metric) if metric else None
    ends = [e.champion_value for e in events if isinstance(e, GenerationEnd)]
    idle = {e.gen: e.idle_slot_seconds for e in events if isinstance(e, GenerationEnd) and e.idle_slot_seconds is not None}
    spent = _ledger_totals(run)
    return RunStatus(
        id=run.run_id, repo=str(run.repo_root), task=meta.get("task"), created=meta.get("created"), status=status,
        stop_reason=stop_reason, backend=meta.get("backend"), base=meta.get("base"), generation=last_gen,
        metric=metric, baseline_value=baseline_value, champion_value=ends[-1] if ends else baseline_value,
        summary=meta.get("summary"), baseline=meta.get("baseline"), ledger=_ledger(run, meta),
        waiting=meta.get("waiting"),
        waiting_process=alive(meta.get("pid")) if status == "waiting" else None,
        generations_budget=started.generations if started else None,
        mode=started.mode if started else None, slots=spent.slots,
        idle_slot_seconds=spent.idle_slot_seconds, idle_by_generation=idle,
    )


def _ledger_totals(run: RunDir):
    from progenitor.run.ledger import Ledger

    return Ledger(run.ledger).totals()

