"""The run's events: one pydantic model per kind, in one discriminated union.

Every surface reads a run through its events: the CLI's progress lines and live board, the
page, ``progenitor.stream_run`` and an embedding lab's listener. Each kind is a model here
(its ``type`` is the discriminator), emitted by the node or surface that did the work
(``RunContext.emit(CoderCommit(...))``), appended to ``events.jsonl`` as one JSON object a
line with its schema version ``v``, and read back typed (``parse_event``).

The fields of an event are its own contract, kept apart from the models inside the graph, so
that a lab's code reading events does not break when those change. Version 1 files (no ``v``)
are read too; a line whose kind this version does not know (or no longer recognises) comes back
as an ``UnknownEvent`` holding its data, never as an error.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from progenitor.run.summary import GenerationSummary, RunSummary

__all__ = [
    "EVENTS_VERSION", "AnyEvent", "Event", "UnknownEvent", "parse_event",
    # kinds, by the stage that emits them
    "RunStart", "RunResume", "RunContinue", "RunWarning", "RunCheck", "RunStopping", "RunStopped", "RunFailed", "RunEnd",
    "RunError", "RunRevert", "ExecutorStart", "NodeStart", "NodeEnd",
    "PrepareData", "PrepareVisible", "BaselineStart", "BaselineEnd",
    "ArchitectProposal", "ArchitectDuplicate", "ArchitectFailed", "ArchitectLesson", "CoderCommit", "CoderFailed", "CoderFix",
    "SafetyTask", "SafetyBase", "SafetyReview", "TrainStart", "TrainLine", "TrainEnd", "TrainCached", "TrainCancelled",
    "TrainCurveUnused", "TrainWatchFailed", "OutputsRemoved", "Score", "Repeated", "TestFailed", "Select", "Pick",
    "OversightDecision", "OversightAsk", "GateWaiting", "GateDecided", "GateDecision", "GateApproval", "GateNotified",
    "GateApplied", "ChampionRestored", "GenerationEnd", "LlmCall", "LlmPreflight", "LlmRecovered", "CoderDuplicate",
]

EVENTS_VERSION = 2
"""1: progenitor 0.1's untyped events (no ``v``). 2: one model per kind (this module)."""


class Event(BaseModel):
    """What every event carries: when, which run, which schema version."""

    model_config = ConfigDict(extra="forbid")

    type: str
    t: float = Field(default_factory=lambda: round(time.time(), 3))
    """Unix time it happened, in seconds."""
    run: str = ""
    """The run's id (filled in when it is written)."""
    v: int = EVENTS_VERSION


class _Candidate(Event):
    """An event about one candidate: ``g<gen>/c<k>``."""

    gen: int
    k: int


# -- the run ---------------------------------------------------------------------------------
class RunStart(Event):
    type: Literal["run.start"] = "run.start"
    repo: str
    base: str
    """The commit the run started from."""
    backend: str
    why: str
    """Why that sandbox backend (auto's choice, or the option)."""
    task: str
    generations: int
    candidates: int
    isolation: str = ""
    metric: str = ""
    mode: str = "generations"
    """``search.mode``: generations or async."""


class RunResume(Event):
    type: Literal["run.resume"] = "run.resume"


class RunContinue(Event):
    """A finished run extended with more generations (``progenitor run --continue``), warm."""

    type: Literal["run.continue"] = "run.continue"
    generations: int
    """Generations added."""
    first: int
    """The first of them."""


class RunWarning(Event):
    type: Literal["run.warning"] = "run.warning"
    message: str


class RunCheck(Event):
    """A run-start check that did not pass cleanly (a warning the run goes on with)."""

    type: Literal["run.check"] = "run.check"
    name: str
    status: str
    message: str


class RunStopping(Event):
    type: Literal["run.stopping"] = "run.stopping"
    reason: str


class RunStopped(Event):
    type: Literal["run.stopped"] = "run.stopped"
    reason: str


class RunFailed(Event):
    type: Literal["run.failed"] = "run.failed"
    error: str
    error_type: str
    resumable: bool = True
    """False for a problem in the task or its code: a resume would replay it."""


class RunEnd(Event, RunSummary):
    """The run finished, stopped or waits at a gate: its summary."""

    type: Literal["run.end"] = "run.end"


class RunError(Event):
    """The last event of ``stream_run`` when the run raised (the exception's message and class)."""

    type: Literal["run.error"] = "run.error"
    error: str
    error_type: str


class RunRevert(Event):
    type: Literal["run.revert"] = "run.revert"
    gen: int
    by: str
    comment: str = ""
    restored: str
    """The champion put back."""
    reverted: list[str] = []
    """The candidates whose promotion was undone (``g<gen>/c<k>``)."""


class ExecutorStart(Event):
    type: Literal["executor.start"] = "executor.start"
    executor: str


class NodeStart(Event):
    type: Literal["node.start"] = "node.start"
    node: str
    gen: int = 0


class NodeEnd(Event):
    type: Literal["node.end"] = "node.end"
    node: str
    gen: int = 0


# -- prepare ---------------------------------------------------------------------------------
class PrepareData(Event):
    type: Literal["prepare.data"] = "prepare.data"


class PrepareVisible(Event):
    type: Literal["prepare.visible"] = "prepare.visible"
    files: list[str] = []
    """What a candidate may read of the prepared data."""


class BaselineStart(Event):
    type: Literal["baseline.start"] = "baseline.start"
    commit: str


class BaselineEnd(Event):
    type: Literal["baseline.end"] = "baseline.end"
    metrics: dict[str, float]


# -- a generation's candidates ----------------------------------------------------------------
class ArchitectProposal(_Candidate):
    type: Literal["architect.proposal"] = "architect.proposal"
    hypothesis: str = ""


class ArchitectDuplicate(_Candidate):
    type: Literal["architect.duplicate"] = "architect.duplicate"
    hypothesis: str = ""
    reason: str


class ArchitectFailed(Event):
    type: Literal["architect.failed"] = "architect.failed"
    gen: int
    reason: str


class ArchitectLesson(_Candidate):
    """What a decided candidate taught (its ``Lesson``, kept in its record and git note)."""

    type: Literal["architect.lesson"] = "architect.lesson"
    verdict: str
    text: str = ""
    next: str = ""
    by: str = ""


class CoderCommit(_Candidate):
    type: Literal["coder.commit"] = "coder.commit"
    commit: str
    ref: str


class CoderFailed(_Candidate):
    type: Literal["coder.failed"] = "coder.failed"
    reason: str
    status: Literal["failed", "budget"] = "failed"
    """The candidate's status: ``budget`` when the LLM budget was spent before it was coded (a
    stop, not a failure); older event files have no such field and read as ``failed``."""


class CoderDuplicate(_Candidate):
    """The change the coder wrote is one the lineage tried already (its diff, whitespace aside)."""

    type: Literal["coder.duplicate"] = "coder.duplicate"
    reason: str
    of: str
    """The candidate that made the same change first (``g<gen>/c<k>``)."""


class CoderFix(_Candidate):
    """The coder was asked to fix candidate ``k``, which crashed in training."""

    type: Literal["coder.fix"] = "coder.fix"
    fix: Optional[int] = None
    """The fix's own index (None: no fix was made)."""
    status: str
    commit: Optional[str] = None
    reason: str = ""


class SafetyTask(Event):
    """A finding about the task itself (its constitution), at run start."""

    type: Literal["safety.task"] = "safety.task"
    rule: str
    severity: str
    message: str


class SafetyBase(Event):
    """What the base commit's own code already has (the review's rules and bandit), shown once when
    the run starts: context, never held against a candidate (which is judged on what it changes)."""

    type: Literal["safety.base"] = "safety.base"
    findings: int
    """How many findings the base's code has."""
    rules: dict[str, int] = {}
    """Rule -> how many, most frequent first."""
    shown: list[str] = []
    """The first few, one line each: ``file:line rule (severity): message``."""


class SafetyReview(_Candidate):
    type: Literal["safety.review"] = "safety.review"
    status: str
    findings: int = 0
    reason: str = ""


class TrainStart(_Candidate):
    type: Literal["train.start"] = "train.start"
    seed: int = 0
    """A repeat's training seed (``objective.repeats``); 0: the candidate's own training."""
    commit: str


class TrainLine(_Candidate):
    type: Literal["train.line"] = "train.line"
    stream: str
    line: str


class TrainEnd(_Candidate):
    type: Literal["train.end"] = "train.end"
    seed: int = 0
    """A repeat's training seed (``objective.repeats``); 0: the candidate's own training."""
    status: str
    reason: str = ""
    duration: float = 0.0
    cpu_seconds: float = 0.0


class TrainCached(_Candidate):
    """A training that had finished before (a resume): looked up, not run again."""

    type: Literal["train.cached"] = "train.cached"
    seed: int = 0
    """A repeat's training seed (``objective.repeats``); 0: the candidate's own training."""
    status: str


class TrainCancelled(_Candidate):
    type: Literal["train.cancelled"] = "train.cancelled"
    seed: int = 0
    """A repeat's training seed (``objective.repeats``); 0: the candidate's own training."""


class TrainCurveUnused(_Candidate):
    """The champion's progress curve could not be trusted: no early stopping this generation."""

    type: Literal["train.curve_unused"] = "train.curve_unused"
    reason: str


class TrainWatchFailed(_Candidate):
    """Early stopping gave up watching a candidate's progress file (it trained on, unwatched)."""

    type: Literal["train.watch_failed"] = "train.watch_failed"
    reason: str


class OutputsRemoved(Event):
    """Candidates' outputs removed as ``train.keep_outputs`` says, once generation ``gen`` was decided."""

    type: Literal["outputs.removed"] = "outputs.removed"
    gen: int
    keep: str
    candidates: int
    bytes: int


class Score(_Candidate):
    type: Literal["score"] = "score"
    status: str
    value: Optional[float] = None
    reason: str = ""


class Repeated(_Candidate):
    """A candidate (or the baseline) was trained and scored again with another seed (``objective.repeats``)."""

    type: Literal["repeat"] = "repeat"
    seed: int
    status: str
    value: Optional[float] = None
    reason: str = ""


class TestFailed(_Candidate):
    type: Literal["test.failed"] = "test.failed"
    reason: str


# -- deciding --------------------------------------------------------------------------------
class Pick(BaseModel):
    """The best scored candidate of a generation that passed its guards, against the champion."""

    k: int
    sha: str
    value: float
    champion_value: float
    improves: bool
    reason: str
    noise: Optional[str] = None
    """Why a gain on the holdout did not count: it does not hold above the noise (the paired test)."""


class Select(Event):
    type: Literal["select"] = "select"
    gen: int
    selection: Optional[Pick] = None


class OversightDecision(Event):
    """What policy (or a person, at a gate) decided about the generation's chosen candidate."""

    type: Literal["oversight.decision"] = "oversight.decision"
    gen: int
    action: str
    """approve, keep, escalate or none."""
    k: Optional[int] = None
    actor: str
    reason: str
    comment: str = ""
    audit_seq: Optional[int] = None
    noise: bool = False
    """keep: it beat the champion on the holdout, but not above the noise (the paired test)."""
    asks: Optional[str] = None
    """The gate a person is asked at, when one is."""


class OversightAsk(Event):
    type: Literal["oversight.ask"] = "oversight.ask"
    gate: str
    gen: int
    gate_kind: str
    description: str


class GateWaiting(Event):
    type: Literal["gate.waiting"] = "gate.waiting"
    gate: str
    gate_kind: str
    gen: int
    description: str
    how: str
    """How to decide, in one line (the commands, the page)."""
    detached: bool = False


class GateDecided(Event):
    """The run (waiting at a gate) saw a decision and goes on."""

    type: Literal["gate.decided"] = "gate.decided"
    gate: str
    gen: int
    decision: str
    by: str
    surface: str


class GateDecision(Event):
    """A decision was recorded from a surface (CLI, API, page), possibly in another process."""

    type: Literal["gate.decision"] = "gate.decision"
    gate: str
    gen: int
    decision: str
    by: str
    surface: str


class GateApproval(Event):
    """One approval of a gate that needs several people; it waits for the rest."""

    type: Literal["gate.approval"] = "gate.approval"
    gate: str
    gen: int
    by: str
    surface: str
    approvals: int
    """Approvals so far."""
    needed: int


class GateNotified(Event):
    """People were told that a gate opened (``oversight.notify``), or could not be."""

    type: Literal["gate.notified"] = "gate.notified"
    gate: str
    gen: int
    channel: str
    """command or webhook."""
    ok: bool
    attempts: int
    detail: str = ""
    """What answered (an HTTP status, an exit code), or why it failed."""


class GateApplied(Event):
    type: Literal["gate.applied"] = "gate.applied"
    gate: str
    gen: int
    gate_kind: str
    by: str
    decisions: list[str] = []


class ChampionRestored(Event):
    type: Literal["champion.restored"] = "champion.restored"
    gen: Optional[int] = None
    commit: str
    by: str


class GenerationEnd(Event, GenerationSummary):
    type: Literal["generation.end"] = "generation.end"


class LlmCall(Event):
    """One request to a language model, as it ended (an answer, an error, a timeout alike)."""

    type: Literal["llm.call"] = "llm.call"
    role: str
    gen: int
    k: Optional[int] = None
    call: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    dollars: float = 0.0
    cached: bool = False
    """Replayed from the run's call cache (a resume): not paid again."""
    seconds: float = 0.0
    outcome: str = "ok"
    """ok, error, aborted or killed (``progenitor.llm.calls.OUTCOMES``)."""
    estimated: bool = False
    """Its tokens and dollars are an estimate (an aborted request)."""
    status: Optional[int] = None
    """The HTTP status of an error."""
    error: str = ""
    retry_after: Optional[float] = None
    finish_reason: str = ""


class LlmPreflight(Event):
    """A model asked for one token before the run prepared anything."""

    type: Literal["llm.preflight"] = "llm.preflight"
    model: str
    ok: bool
    detail: str
    dollars: float = 0.0


class LlmRecovered(Event):
    """A request the ledger had not charged when the run's last process died, charged when it resumed."""

    type: Literal["llm.recovered"] = "llm.recovered"
    role: str
    gen: int
    k: Optional[int] = None
    call: str
    model: str
    outcome: str
    estimated: bool = False
    dollars: float = 0.0


class UnknownEvent(BaseModel):
    """A line this version cannot read as one of its kinds (an older or newer file): its data, kept."""

    model_config = ConfigDict(extra="allow")

    type: str = "unknown"
    t: float = 0.0
    run: str = ""
    v: int = 0


AnyEvent = Annotated[Union[
    RunStart, RunResume, RunContinue, RunWarning, RunCheck, RunStopping, RunStopped, RunFailed, RunEnd, RunError, RunRevert,
    ExecutorStart, NodeStart, NodeEnd, PrepareData, PrepareVisible, BaselineStart, BaselineEnd,
    ArchitectProposal, ArchitectDuplicate, ArchitectFailed, ArchitectLesson, CoderCommit, CoderFailed, CoderFix,
    SafetyTask, SafetyBase, SafetyReview, TrainStart, TrainLine, TrainEnd, TrainCached, TrainCancelled,
    TrainCurveUnused, TrainWatchFailed, OutputsRemoved, Score, Repeated, TestFailed, Select, OversightDecision,
    OversightAsk, GateWaiting, GateDecided, GateDecision, GateApproval, GateNotified, GateApplied, ChampionRestored,
    GenerationEnd, LlmCall, LlmPreflight, LlmRecovered, CoderDuplicate,
], Field(discriminator="type")]
"""Every kind of event, discriminated by ``type``."""

_ADAPTER: TypeAdapter = TypeAdapter(AnyEvent)


def _upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 wrote the payload over the envelope: a decision's own ``type`` hid the event's
    kind. Nothing else changed shape."""
    data = {**data, "v": EVENTS_VERSION}
    return data


def parse_event(data: dict[str, Any]) -> Event | UnknownEvent:
    """One event from its JSON object, of this version or an older one; never raises on data."""
    if "v" not in data:
        data = _upgrade_v1(data)
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError:
        return UnknownEvent.model_validate(data)
