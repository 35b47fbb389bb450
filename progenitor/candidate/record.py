"""A candidate: one typed record from proposal to decision, with the status machine it moves by.

The same record is the graph's state for the candidate, its ``record.json`` in the run
directory, its git note (written once, when the record is final, and again only when a later
decision such as a revert changes it), ``lineage --json`` and the API's lineage. Which status
may follow which is said once, in ``TRANSITIONS``; ``Candidate.advance`` refuses anything else.

The note carries ``schema``: notes written before the field existed (schema 1) are read
through ``Candidate.from_record``, so an old lineage stays readable.
"""

from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from progenitor.candidate.evidence import Evidence
from progenitor.candidate.findings import Finding
from progenitor.candidate.keys import CandidateKey
from progenitor.candidate.lesson import Lesson
from progenitor.candidate.proposal import Proposal
from progenitor.candidate.training import TrainRecord
from progenitor.errors import ProgenitorError

__all__ = ["SCHEMA", "TERMINAL", "TRANSITIONS", "Candidate", "CandidateCost", "Decision",
           "DiffStats", "IllegalTransition"]

SCHEMA = 2
"""Version of the record's JSON. 1: the untyped records of progenitor 0.1 (no ``schema`` key)."""

TRAINING_ENDS = ("failed", "timeout", "oom", "disk", "pruned")
"""How a training that did not succeed ends (the sandbox's statuses, and pruned)."""

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "proposed": ("committed", "failed", "budget"),
    "committed": ("reviewed", "escalated", "rejected", "failed", "budget"),
    "escalated": ("reviewed", "rejected", "failed", "budget"),
    "reviewed": ("trained", "rejected", "budget", *TRAINING_ENDS),
    "trained": ("scored", "failed"),
    "scored": (),
    "rejected": (),
    "failed": (),
    "timeout": (),
    "oom": (),
    "disk": (),
    "pruned": (),
    "budget": (),
}
"""Which status may follow which. ``failed`` is reachable from every unfinished status: a
candidate whose work could not be done (the coder could not apply it, git refused it, its
training never reported) fails, with a reason. ``escalated``: the review found something only a
person may accept (a constitution change); it waits at the human gate, which sends it on to
training (``reviewed``) or rejects it. ``reviewed -> rejected``: a person refused to train it.
``budget``: its work stopped because the run's ``budget.dollars`` was spent (no LLM request may
start): neither a failure of the candidate nor a rejection by the review."""

TERMINAL: tuple[str, ...] = tuple(status for status, nexts in TRANSITIONS.items() if not nexts)

class IllegalTransition(ProgenitorError):
    """A status change the status machine does not allow (a bug, not bad input)."""


class DiffStats(BaseModel):
    files: int = 0
    added: int = 0
    removed: int = 0
    fingerprint: str = ""
    """What the change does, whatever its wording or its champion: a hash of its added and removed
    lines, whitespace aside (``Lineage.change_fingerprint``); equal ones are the same change."""


class Decision(BaseModel):
    """What was decided about this candidate, and by whom."""

    verdict: str
    """promoted, not promoted, rejected, failed, timeout, ..., reverted."""
    by: str
    """policy:<mode>, platform, or the person (human:<name>)."""
    reason: str = ""
    comment: str = ""
    """A person's comment, when one was given."""


class CandidateCost(BaseModel):
    cpu_seconds: float = 0.0
    gpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    attempts: int = 0
    dollars: float = 0.0
    """LLM spend on this candidate: its own calls (code, review) plus an equal share of its
    generation's architect call."""
    llm_calls: int = 0
    """Its own LLM calls (the architect's call is the generation's)."""
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Candidate(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_version: int = Field(SCHEMA, alias="schema")
    run: str
    gen: int
    k: int
    objective: str = ""
    """The metric selection optimises (so a record reads on its own)."""
    status: str = "proposed"
    proposal: Proposal
    parent: str
    """The commit it was built on: the champion when it was proposed."""
    ref: str = ""
    sha: Optional[str] = None
    """Its commit, once the coder made one."""
    diff: Optional[DiffStats] = None
    params: dict[str, Any] = {}
    """The search-space values in its config file (the champion's, with the proposal's on top)."""
    findings: list[Finding] = []
    train: Optional[TrainRecord] = None
    metrics: dict[str, float] = {}
    """The trusted scorer's numbers: the only ones selection reads."""
    test_metrics: dict[str, float] = {}
    """Its figures on the final test split, measured only once it was promoted (``test_<metric>``)."""
    reason: str = ""
    """Why it ended as it did, in one sentence (empty while it is doing well)."""
    scorer_log: str = ""
    guard_failed: Optional[str] = None
    decision: Optional[Decision] = None
    cost: Optional[CandidateCost] = None
    fix_of: Optional[int] = None
    """Set on the coder's fix of a candidate that crashed in training: that candidate's index
    (its commit is this one's parent)."""
    fix_tried: bool = False
    """Set on a candidate that crashed in training once the coder was asked for its fix."""
    parent_name: str = ""
    """The node of the lineage ``parent`` is (``g<gen>/c<k>``; ``g0/c0``: the human baseline),
    and what the architect was asked to do with it: see ``step``."""
    step: str = ""
    """``improve`` (build on a scored node), ``debug`` (fix a node that crashed in training);
    empty in records written before parents were drawn from the lineage."""
    evidence: Optional[Evidence] = None
    """Whether its gain over the champion holds above the noise (paired test, repeats)."""
    repeats: list[dict[str, float]] = []
    """When it was trained again with other seeds (``objective.repeats``): each training's metrics,
    its first one first; ``metrics`` is then their mean."""
    lesson: Optional[Lesson] = None
    """What it taught, written after its generation was decided."""

    @field_validator("status")
    @classmethod
    def _known(cls, status: str) -> str:
        if status not in TRANSITIONS:
            raise ValueError(f"{status!r} is not a candidate status; one of {', '.join(TRANSITIONS)}")
        return status

    @classmethod
    def new(cls, proposal: Proposal, run: str, parent: str, objective: str) -> "Candidate":
        key = CandidateKey(run=run, gen=proposal.gen, k=proposal.k)
        return cls(run=run, gen=proposal.gen, k=proposal.k, objective=objective, proposal=proposal,
                   parent=parent, ref=key.ref)

    @property
    def key(self) -> CandidateKey:
        return CandidateKey(run=self.run, gen=self.gen, k=self.k)

    @property
    def final(self) -> bool:
        """Its status can change no more (the decision may still be written, or revised)."""
        return self.status in TERMINAL

    @property
    def value(self) -> Optional[float]:
        return self.metrics.get(self.objective)

    def advance(self, status: str, **changes: Any) -> "Candidate":
        """A copy in ``status`` with ``changes`` applied; ``IllegalTransition`` if the machine forbids it."""
        if status not in TRANSITIONS.get(self.status, ()):
            raise IllegalTransition(f"candidate {self.key.name} cannot go from {self.status!r} to {status!r}")
        return self.model_copy(update={"status": status, **changes})

    def fail(self, reason: str) -> "Candidate":
        return self.advance("failed", reason=reason)

    def with_(self, **changes: Any) -> "Candidate":
        """A copy with fields changed that are not its status (findings, decision, cost)."""
        if "status" in changes:
            raise IllegalTransition("use advance() to change a candidate's status")
        return self.model_copy(update=changes)

    def record(self) -> dict:
        """The JSON record (git note, record.json, lineage --json)."""
        return self.model_dump(mode="json", by_alias=True)

    @classmethod
    def from_record(cls, data: dict) -> "Candidate":
        """Read a record of any schema so far (the git note of an older lineage included)."""
        data = dict(data)
        if data.get("schema", 1) == 1:
            data = _upgrade_v1(data)
        return cls.model_validate(data)


def _upgrade_v1(data: dict) -> dict:
    """Schema 1 (progenitor 0.1): an untyped dict; the proposal had an Optuna ``trial`` and no
    ``gen``, the log tail sat beside the training record."""
    data["schema"] = SCHEMA
    proposal = {k: v for k, v in (data.get("proposal") or {}).items() if k != "trial"}
    proposal.setdefault("gen", data.get("gen", 0))
    proposal.setdefault("k", data.get("k", 0))
    proposal.setdefault("hypothesis", "")
    data["proposal"] = proposal
    tail = data.pop("log_tail", "")
    if data.get("train") is not None:
        data["train"] = {"log_tail": tail, **data["train"]}
    data.setdefault("parent", "")
    return data
