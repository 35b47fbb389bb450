"""The live display of a run on a terminal: what generation it is in, each candidate in
flight with its state, the best value so far and the time elapsed, kept from the run's
events and redrawn by ``rich.live`` a few times a second."""

from __future__ import annotations

import time
from functools import singledispatchmethod
from typing import Optional

from rich.markup import escape
from rich.table import Table

from progenitor.candidate.keys import candidate_name
from progenitor.run.events import (
    ArchitectProposal,
    BaselineEnd,
    BaselineStart,
    CoderFailed,
    CoderFix,
    Event,
    ExecutorStart,
    GateDecided,
    GateWaiting,
    GenerationEnd,
    PrepareData,
    RunResume,
    RunStart,
    RunStopping,
    SafetyReview,
    Score,
    TrainCancelled,
    TrainEnd,
    TrainStart,
)

__all__ = ["RunBoard"]


def _fmt(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.4f}"


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Row:
    """One row of the board."""

    def __init__(self, state: str, note: str = ""):
        self.state, self.note = state, note
        self.since = time.monotonic()

    def set(self, state: str, note: Optional[str] = None) -> None:
        self.state, self.since = state, time.monotonic()
        if note is not None:
            self.note = note


class RunBoard:
    """State of the run as its events tell it; ``__rich__`` draws it."""

    def __init__(self) -> None:
        self.run = self.task = ""
        self.metric = "objective"
        self.generations = 0
        self.gen = 0
        self.phase = "starting"
        self.baseline: Optional[float] = None
        self.best: Optional[float] = None
        self.rows: dict[str, Row] = {}
        self.started = time.monotonic()

    @singledispatchmethod
    def update(self, e: Event) -> None:
        """Take in one event of the run (a kind the board does not show changes nothing)."""

    # -- events ------------------------------------------------------------------------------
    @update.register
    def _run_start(self, e: RunStart) -> None:
        self.run, self.task, self.generations = e.run, e.task, e.generations
        self.metric = e.metric or self.metric

    @update.register
    def _run_resume(self, e: RunResume) -> None:
        self.run, self.phase = e.run, "resuming"

    @update.register
    def _executor_start(self, e: ExecutorStart) -> None:
        self.phase = "starting Ray" if e.executor == "ray" else "starting"

    @update.register
    def _prepare_data(self, e: PrepareData) -> None:
        self.phase = "preparing data"

    @update.register
    def _baseline_start(self, e: BaselineStart) -> None:
        self.phase = "training the human baseline"
        self.rows = {"baseline": Row("queued", e.commit[:10])}

    @update.register
    def _baseline_end(self, e: BaselineEnd) -> None:
        value = e.metrics.get(self.metric)
        self.baseline = self.best = value
        self.rows["baseline"] = Row("scored", _fmt(value))

    @update.register
    def _architect_proposal(self, e: ArchitectProposal) -> None:
        if e.gen != self.gen:
            self.gen, self.rows = e.gen, {}
        self.phase = f"generation {self.gen}"
        self.rows[candidate_name(e.gen, e.k)] = Row("proposed", e.hypothesis)

    def _row(self, e: Event) -> Optional[Row]:
        gen, k = getattr(e, "gen", None), getattr(e, "k", None)
        return self.rows.get("baseline" if gen == 0 else candidate_name(gen, k))

    @update.register
    def _coder_fix(self, e: CoderFix) -> None:
        if e.fix is not None:
            self.rows[candidate_name(e.gen, e.fix)] = Row("proposed", f"fix of {candidate_name(e.gen, e.k)}")

    @update.register
    def _gate_waiting(self, e: GateWaiting) -> None:
        self.phase = f"waiting for a person at {e.gate}"

    @update.register
    def _gate_decided(self, e: GateDecided) -> None:
        self.phase = f"generation {self.gen}"

    @update.register
    def _coder_failed(self, e: CoderFailed) -> None:
        if row := self._row(e):
            row.set("coder failed", e.reason)

    @update.register
    def _safety_review(self, e: SafetyReview) -> None:
        if row := self._row(e):
            row.set("rejected", e.reason) if e.status == "rejected" else row.set("queued")

    @update.register
    def _train_start(self, e: TrainStart) -> None:
        if row := self._row(e):
            row.set("training")

    @update.register
    def _train_end(self, e: TrainEnd) -> None:
        if row := self._row(e):
            row.set("trained" if e.status == "ok" else e.status, None if e.status == "ok" else e.reason)

    @update.register
    def _train_cancelled(self, e: TrainCancelled) -> None:
        if row := self._row(e):
            row.set("cancelled")

    @update.register
    def _score(self, e: Score) -> None:
        if row := self._row(e):
            row.set("scored", _fmt(e.value)) if e.status == "scored" else row.set("failed", e.reason)

    @update.register
    def _generation_end(self, e: GenerationEnd) -> None:
        self.best = e.champion_value
        self.phase = f"generation {e.gen} done"

    @update.register
    def _run_stopping(self, e: RunStopping) -> None:
        self.phase = "stopping"

    # -- drawing -----------------------------------------------------------------------------
    def __rich__(self) -> Table:
        gen = f"generation {self.gen} of {self.generations}" if self.gen else self.phase
        best = f"best {escape(self.metric)} {_fmt(self.best)} (baseline {_fmt(self.baseline)})"
        title = f"run {escape(self.run)} · {gen} · {best} · {_clock(time.monotonic() - self.started)} elapsed"
        table = Table("candidate", "state", "for", "note", title=title, title_justify="left", expand=False)
        now = time.monotonic()
        for key, row in self.rows.items():
            colour = {"scored": "green", "training": "cyan", "rejected": "red", "failed": "red"}.get(row.state, "")
            state = f"[{colour}]{escape(row.state)}[/{colour}]" if colour else escape(row.state)
            table.add_row(key, state, _clock(now - row.since), escape(row.note[:90]))
        return table
