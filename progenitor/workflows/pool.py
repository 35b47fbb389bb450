"""The candidate pool: every training slot kept busy, every candidate scored as its training ends.

Each training is its own call of the executor (``Executor.run`` from several threads at once),
at most ``slots`` at a time; the moment one ends its slot is free for the next, and its
candidate goes to a bounded scoring pool on the driver, next to the labels (``scorer.parallel``
at once), while the others still train. Both results are written where a resumed run looks them
up, keyed by run / generation / candidate (``train.json``, ``score.json``): a candidate handed
to the pool again (a resume) is neither trained nor scored twice.

The pool is level-triggered: a node asks what state a candidate has reached (``entry``), and
``wait`` returns when anything changed. The generation mode hands it a generation and waits for
its last score (``training.train``); the asynchronous mode takes each result as it comes and
refills the slot (``workflows.asynchronous``). One pool per session of a run (``of``), closed
with it.
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Optional

from pydantic import BaseModel, ConfigDict

from progenitor.candidate import TrainRecord
from progenitor.candidate.keys import CandidateKey
from progenitor.compute.base import PACK_SECONDS, JobResult, slots_of
from progenitor.compute.jobs import LINE_EVENTS_PER_CANDIDATE, LOG_TAIL_LINES, make_job, record_from
from progenitor.compute.outputs import unpack_outputs
from progenitor.compute.pruning import PruneConfig
from progenitor.evaluation.scorer import Score
from progenitor.run.events import TrainCached, TrainCancelled, TrainEnd, TrainLine, TrainStart
from progenitor.run.rundir import read_json, write_json
from progenitor.task.flags import train_command
from progenitor.workflows.state import RunContext

__all__ = ["CandidatePool", "Entry", "job_of", "of"]

JOIN_SECONDS = 30.0
"""How long closing the pool waits for a training or a score still under way (a cancelled
training ends within the executor's own bound; a score is not interrupted)."""

Scorer = Callable[[RunContext, CandidateKey, str, int], Score]
"""(context, candidate, split, seed) -> its score."""


def job_of(key: CandidateKey, seed: int = 0) -> str:
    """A training's job key: the candidate's own (seed 0), or a repeat's with another seed."""
    return key.job if not seed else f"{key.job}/seed{seed}"


class Entry(BaseModel):
    """Where one candidate handed to the pool stands (a copy: the pool's own moves on)."""

    model_config = ConfigDict(frozen=True)

    key: CandidateKey
    seed: int = 0
    """0: the candidate's own training; else a repeat's seed (``objective.repeats``)."""
    trained: bool = False
    """Its training ended (or was found done): ``record`` says how, or it was cancelled."""
    record: Optional[TrainRecord] = None
    """How the training ended; None when a stop cancelled it (not a result: trained again on resume)."""
    scores: dict[str, Score] = {}
    """By split, once scored."""
    splits: tuple[str, ...] = ()
    """The splits to score once trained well."""
    error: Optional[str] = None
    """An error of the platform (not the candidate's) in its training or scoring; raised by ``check``."""

    @property
    def cancelled(self) -> bool:
        return self.trained and self.record is None

    @property
    def done(self) -> bool:
        """Nothing more will happen to it: trained and (if it trained well) scored on every split."""
        if not self.trained:
            return False
        if self.record is None or self.record.status != "ok" or self.error:
            return True
        return all(split in self.scores for split in self.splits)


class _Item(BaseModel):
    key: CandidateKey
    sha: str
    prune: Optional[PruneConfig] = None
    seed: int = 0

    @property
    def job(self) -> str:
        return job_of(self.key, self.seed)


class CandidatePool:
    """Trains the candidates it is handed through the run's executor and scores them."""

    def __init__(self, ctx: RunContext, score: Scorer):
        self.ctx = ctx
        self._score = score
        self._changed = threading.Condition(threading.RLock())  # re-entered by a stop's signal handler
        self._entries: dict[str, Entry] = {}
        self._queue: deque[_Item] = deque()
        self._training = 0
        self._threads: list[threading.Thread] = []
        self._scoring = ThreadPoolExecutor(max_workers=ctx.spec.scorer.parallel, thread_name_prefix="progenitor-score")
        self._closed = False
        """Set by a stop (``cancel``) or ``close``: nothing starts any more."""
        self._errors: list[BaseException] = []

    # -- what the nodes call ----------------------------------------------------------------
    def slots(self) -> int:
        """Trainings of the task's size the executor runs at once (recorded in the ledger)."""
        res = self.ctx.spec.train.resources
        slots = slots_of(self.ctx.executor, res.cpus, res.gpus)
        if self.ctx.ledger is not None:
            self.ctx.ledger.set_slots(slots)
        return slots

    def training(self) -> int:
        """Trainings under way or waiting for a slot."""
        with self._changed:
            return self._training + len(self._queue)

    def submit(self, key: CandidateKey, sha: str, prune: Optional[PruneConfig] = None,
               splits: tuple[str, ...] = ("holdout",), seed: int = 0) -> None:
        """Train ``key`` (commit ``sha``, with ``seed``) when a slot is free, then score it on
        ``splits``; a candidate handed in before is left as it is."""
        job = job_of(key, seed)
        with self._changed:
            if job in self._entries:
                return
            # After a stop nothing starts: the candidate is cancelled at once (trained on resume).
            self._entries[job] = Entry(key=key, seed=seed, splits=splits, trained=self._closed)
            if not self._closed:
                self._queue.append(_Item(key=key, sha=sha, prune=prune, seed=seed))
        self._admit()

    def entry(self, key: CandidateKey, seed: int = 0) -> Optional[Entry]:
        with self._changed:
            return self._entries.get(job_of(key, seed))

    def wait(self, timeout: float) -> None:
        """Return when a candidate moved on, or after ``timeout`` seconds."""
        with self._changed:
            self._changed.wait(timeout)

    def wait_done(self, keys: list[CandidateKey], poll: float = 0.5, seed: int = 0) -> dict[str, Entry]:
        """Wait until every one of ``keys`` (trained with ``seed``) is done (a stop ends
        trainings, so this ends too)."""
        while True:
            with self._changed:
                entries = {job_of(k, seed): self._entries[job_of(k, seed)] for k in keys}
                if all(e.done for e in entries.values()):
                    return entries
                self._changed.wait(poll)

    def cancel(self) -> None:
        """Start nothing more; the executor cancels what runs (the stop watch calls it)."""
        with self._changed:
            self._closed = True
            for item in self._queue:  # never started: cancelled, trained again on resume
                self._entries[item.job] = self._entries[item.job].model_copy(update={"trained": True})
            self._queue.clear()
            self._changed.notify_all()

    def close(self) -> None:
        self.cancel()
        for thread in list(self._threads):
            thread.join(JOIN_SECONDS)
        self._scoring.shutdown(wait=True, cancel_futures=True)

    # -- the work -------------------------------------------------------------------------
    def _admit(self) -> None:
        """Start the waiting trainings while slots are free."""
        slots = self.slots()
        with self._changed:
            while self._queue and self._training < slots and not self._closed:
                item = self._queue.popleft()
                self._training += 1
                thread = threading.Thread(target=self._train, args=(item,), name=item.job, daemon=True)
                self._threads.append(thread)
                thread.start()

    def _update(self, job: str, **changes) -> Entry:
        with self._changed:
            entry = self._entries[job] = self._entries[job].model_copy(update=changes)
            self._changed.notify_all()
            return entry

    def _train(self, item: _Item) -> None:
        record: Optional[TrainRecord] = None
        try:
            record = _looked_up(self.ctx, item.key, item.seed)
            if record is None and not self.ctx.run.stop_requested():
                record = _trained(self.ctx, item)
        except BaseException as exc:  # noqa: BLE001 - the platform's failure: raised by the node that waits
            self._update(item.job, trained=True, error=f"{type(exc).__name__}: {exc}")
            self._errors.append(exc)
        finally:
            with self._changed:
                self._training -= 1
                self._threads = [t for t in self._threads if t is not threading.current_thread()]
        entry = self.entry(item.key, item.seed)
        assert entry is not None
        if entry.error is None:
            entry = self._update(item.job, trained=True, record=record)
        if self.ctx.run.stop_requested() and self.ctx.executor is not None:
            self.ctx.executor.cancel()  # a stop: what still trains ends now, and nothing starts
        elif not entry.error:
            self._admit()
            if record is not None and record.status == "ok":
                for split in entry.splits:
                    self._scoring.submit(self._scored, item, split)

    def _scored(self, item: _Item, split: str) -> None:
        try:
            result = self._score(self.ctx, item.key, split, item.seed)
        except BaseException as exc:  # noqa: BLE001 - raised by the node that waits
            self._errors.append(exc)
            self._update(item.job, error=f"{type(exc).__name__}: {exc}")
            return
        with self._changed:
            entry = self._entries[item.job]
            self._entries[item.job] = entry.model_copy(update={"scores": {**entry.scores, split: result}})
            self._changed.notify_all()

    def check(self) -> None:
        """Raise the first platform error a training or a score met (a candidate's own failure
        is its record's status, never an error here)."""
        if self._errors:
            raise self._errors[0]


def of(ctx: RunContext) -> CandidatePool:
    """The session's pool (made on first use; ``runner.session`` closes it)."""
    if ctx.pool is None:
        from progenitor.workflows.scoring import score_dir

        ctx.pool = CandidatePool(ctx, lambda c, key, split, seed: score_dir(c, key, split, seed))
    return ctx.pool


# -- one training -------------------------------------------------------------------------------
def _place(ctx: RunContext, key: CandidateKey, seed: int) -> tuple[Path, Path]:
    """A training's record file and outputs directory: the candidate's own (seed 0), or a
    repeat's with another seed, kept apart."""
    if not seed:
        return ctx.run.train_file(key.gen, key.k), ctx.run.outputs(key.gen, key.k)
    where = ctx.run.repeat(key.gen, key.k, seed)
    return where / "train.json", where / "out"


def _looked_up(ctx: RunContext, key: CandidateKey, seed: int = 0) -> Optional[TrainRecord]:
    done = read_json(_place(ctx, key, seed)[0])
    if done is None:
        return None
    record = TrainRecord.model_validate(done)
    ctx.emit(TrainCached(gen=key.gen, k=key.k, status=record.status, seed=seed))
    return record


def _trained(ctx: RunContext, item: _Item) -> Optional[TrainRecord]:
    """Train one candidate through the executor; its record, or None when a stop cancelled it."""
    key, seed = item.key, item.seed
    command, problem = train_command(ctx.spec, lambda path: ctx.lineage.show(item.sha, path))
    if problem:  # its values file cannot give its flags: it fails without running
        return _refused(ctx, key, command, problem, seed)
    job = make_job(ctx.spec, item.job, ctx.lineage.archive(item.sha),
                   {"run": key.run, "candidate": key.name, "commit": item.sha[:12]},
                   ctx.backend, ctx.backend_options, item.prune, command=command, seed=seed)
    record = None
    for result in ctx.executor.run([job], on_event=_relay(ctx, item)):
        if ctx.ledger is not None:  # every attempt costs, a cancelled one too
            ctx.ledger.record_job(job, result)
            ctx.ledger.save()
        if result.sandbox.status == "killed" and not result.pruned:
            # Cancelled by a stop: not a result. A resume trains this candidate again.
            ctx.emit(TrainCancelled(gen=key.gen, k=key.k, seed=seed))
            continue
        record = _keep(ctx, key, result, command, seed)
    return record


def _keep(ctx: RunContext, key: CandidateKey, result: JobResult, command: str, seed: int = 0) -> TrainRecord:
    """Unpack a finished training's outputs and write its record: from now on it is looked up."""
    record_file, out_dir = _place(ctx, key, seed)
    unpack_outputs(result.outputs_archive, out_dir, seconds=PACK_SECONDS)
    record = record_from(result, out=out_dir.relative_to(ctx.run.path).as_posix())  # records hold no host paths
    record = record.model_copy(update={"command": command})
    write_json(record_file, record.model_dump(mode="json"))
    ctx.emit(TrainEnd(gen=key.gen, k=key.k, status=record.status, reason=record.reason,
                      duration=record.duration, cpu_seconds=record.cpu_seconds, seed=seed))
    return record


def _refused(ctx: RunContext, key: CandidateKey, command: str, problem: str, seed: int = 0) -> TrainRecord:
    """The record of a commit that could not be given its command: failed, nothing ran."""
    record = TrainRecord(status="failed", reason=f"not trained: {problem}"[:500], command=command)
    write_json(_place(ctx, key, seed)[0], record.model_dump(mode="json"))
    ctx.emit(TrainEnd(gen=key.gen, k=key.k, status=record.status, reason=record.reason, duration=0.0, cpu_seconds=0.0,
                      seed=seed))
    return record


def _relay(ctx: RunContext, item: _Item):
    """Turn executor events into run events; a flood of output lines is cut."""
    key, seen = item.key, [0]

    def on_event(kind: str, payload: dict) -> None:
        if payload.get("key") != item.job:
            return
        if kind == "train.start":
            ctx.emit(TrainStart(gen=key.gen, k=key.k, commit=item.sha, seed=item.seed))
        elif kind == "train.line":
            seen[0] += 1
            if seen[0] <= LINE_EVENTS_PER_CANDIDATE:
                ctx.emit(TrainLine(gen=key.gen, k=key.k, stream=payload["stream"], line=payload["line"][:500]))
            elif seen[0] == LINE_EVENTS_PER_CANDIDATE + 1:
                ctx.emit(TrainLine(gen=key.gen, k=key.k, stream=payload["stream"],
                                   line=f"[more output not streamed; the last {LOG_TAIL_LINES} lines are kept in the record]"))

    return on_event
