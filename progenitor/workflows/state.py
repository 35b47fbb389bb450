"""The graph's state, and the context its nodes close over.

LangGraph keeps ``RunState``: plain JSON (it is checkpointed after every node), each candidate
the JSON of its ``Candidate`` record, so that a checkpoint reads like the run's own files and a
lab's graph can extend it. The nodes never see that JSON: the graph turns it into a ``State``
(typed models: ``Candidate``, ``Champion``, ``Selection``, ...) once, at the node's boundary,
and a node returns an ``Update`` of models, turned back into JSON there too
(``workflows.graph``). The context holds the live objects (repo, run directory, agents,
executor) and is rebuilt on resume.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional, TypedDict

from pydantic import BaseModel, ConfigDict, field_validator

from progenitor.agents.base import AgentContext, Architect, Coder, Reviewer
from progenitor.candidate import Candidate
from progenitor.candidate.champion import Champion
from progenitor.lineage import Lineage
from progenitor.options import RunOptions
from progenitor.oversight.audit import AuditLog
from progenitor.oversight.policy import PolicyDecision, Selection
from progenitor.oversight.store import DecisionStore
from progenitor.run.events import Event
from progenitor.run.rundir import RunDir
from progenitor.run.summary import GenerationSummary
from progenitor.task.constitution import Constitution
from progenitor.task.spec import TaskSpec

if TYPE_CHECKING:
    from progenitor.compute.base import Executor
    from progenitor.llm import LlmSession
    from progenitor.run.ledger import Ledger
    from progenitor.workflows.pool import CandidatePool

__all__ = ["AgentFactory", "EventListener", "Flow", "RunContext", "RunState", "State", "Update"]


class RunState(TypedDict, total=False):
    run_id: str
    generation: int
    """The generation under way (1-based); 0 while preparing."""
    base: str
    """The commit the run started from: its spec, scorer and protected files are the trusted ones."""
    baseline: dict
    """``Champion`` JSON of the human baseline, scored in prepare."""
    champion: dict
    """``Champion`` JSON: the best approved commit so far."""
    candidates: list[dict]
    """This generation's ``Candidate`` records."""
    selection: Optional[dict]
    """What select picked (``Selection`` JSON) or None."""
    decision: Optional[dict]
    """What oversight decided about the selection (``PolicyDecision`` JSON)."""
    history: list[dict]
    """One ``GenerationSummary`` JSON per finished generation."""
    feedback: list[str]
    """Comments from human decisions, newest last (they reach the architect)."""
    stop_reason: Optional[str]
    request: Optional[dict]
    """What the human gate asks (LangChain's HITL request, see ``progenitor.oversight.hitl``), or None."""
    answer: Optional[dict]
    """What the gate was answered (the HITL response), until the node after it applies it."""
    gates: list[str]
    """Every gate this run opened (``g1/promotion``, ...), oldest first."""
    approved: list[int]
    """Candidates of this generation a person approved for training (or edited into being)."""
    flow: dict
    """``Flow`` JSON: the asynchronous mode's own bookkeeping (``search.mode: async``)."""


class Flow(BaseModel):
    """What the asynchronous mode (``workflows.asynchronous``) keeps between its steps. There,
    ``generation`` and ``candidates`` are the generation the graph works on at the moment (the
    one being proposed, or the one being decided), and the generations handed to the pool and
    not decided yet wait here."""

    model_config = ConfigDict(extra="ignore")

    next: int = 1
    """The generation the next launch opens (every candidate is a generation of one)."""
    inflight: list[Candidate] = []
    """The candidates of every generation handed to the pool and not yet taken back to be decided,
    oldest first: a resumed run hands their trainings to its new pool again."""
    step: str = "decide"
    """What ``harvest`` found to do: ``launch`` (a slot is free) or ``decide`` (a generation is done)."""

    @field_validator("inflight", mode="before")
    @classmethod
    def _records(cls, value: Any) -> Any:
        return [Candidate.from_record(c) if isinstance(c, dict) else c for c in value or []]

    @property
    def pending(self) -> list[int]:
        """The generations waiting in the pool, oldest first."""
        return sorted({c.gen for c in self.inflight})


class State(BaseModel):
    """The state as a node reads it: ``RunState`` typed (see ``RunState`` for each field)."""

    model_config = ConfigDict(extra="ignore")  # the keys an embedding lab adds to the state pass by

    run_id: str = ""
    generation: int = 0
    base: str = ""
    baseline: Optional[Champion] = None
    champion: Optional[Champion] = None
    candidates: list[Candidate] = []
    selection: Optional[Selection] = None
    decision: Optional[PolicyDecision] = None
    history: list[GenerationSummary] = []
    feedback: list[str] = []
    stop_reason: Optional[str] = None
    request: Optional[dict] = None
    answer: Optional[dict] = None
    gates: list[str] = []
    approved: list[int] = []
    flow: Flow = Flow()

    @field_validator("candidates", mode="before")
    @classmethod
    def _records(cls, value: Any) -> Any:
        """Records of any schema (a checkpoint written by an older version included)."""
        return [Candidate.from_record(c) if isinstance(c, dict) else c for c in value or []]

    @classmethod
    def of(cls, raw: RunState) -> "State":
        return cls.model_validate(raw)

    def candidate(self, k: int) -> Candidate:
        return next(c for c in self.candidates if c.k == k)


class Update(BaseModel):
    """What a node changes: only the fields it sets are written back (``to_json``)."""

    model_config = ConfigDict(extra="forbid")

    generation: Optional[int] = None
    baseline: Optional[Champion] = None
    champion: Optional[Champion] = None
    candidates: Optional[list[Candidate]] = None
    selection: Optional[Selection] = None
    decision: Optional[PolicyDecision] = None
    history: Optional[list[GenerationSummary]] = None
    feedback: Optional[list[str]] = None
    stop_reason: Optional[str] = None
    request: Optional[dict] = None
    answer: Optional[dict] = None
    gates: Optional[list[str]] = None
    approved: Optional[list[int]] = None
    flow: Optional[Flow] = None

    def to_json(self) -> dict:
        """The fields set, as the JSON ``RunState`` holds (a candidate as its whole record)."""
        whole = self.model_dump(mode="json", by_alias=True)  # nested models whole, defaults included
        return {name: whole[name] for name in self.model_fields_set}


AgentFactory = Callable[[AgentContext], Any]
"""Builds an agent from its context: a registered class, or a caller's factory (the API's ``architect=``)."""
EventListener = Callable[[Event], None]
"""Told every event of the run as it happens (the CLI's progress, ``stream_run``, a lab's own)."""


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
    store: Optional[DecisionStore] = None
    """Where the run's gates and decisions are: its repo's SQLite file (the default), or a team's
    PostgreSQL."""
    factories: dict[str, AgentFactory] = field(default_factory=dict)
    """Agents given by the caller (the API's ``architect=``), by role; the rest come from the registry."""
    constitution: Optional[Constitution] = None
    """The base commit's constitution, loaded once (``nodes.constitution``)."""
    ledger: Optional["Ledger"] = None
    """The run's Ledger: CPU/GPU/wall seconds per candidate, LLM spend."""
    listeners: list[EventListener] = field(default_factory=list)
    executor: Optional["Executor"] = None
    """Where training runs (``compute``), started by the runner's session."""
    pool: Optional["CandidatePool"] = None
    """The session's candidate pool (``workflows.pool.of``): trainings on the executor's slots, scores as they end."""
    llm: Optional["LlmSession"] = None
    """The run's LLM session (``workflows.llm_usage.open_session``), when the task has an llm: section."""
    _agents: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.store is None:
            self.store = DecisionStore(self.run.repo_root)

    def agent_context(self) -> AgentContext:
        seed = self.options.seed if self.options.seed is not None else self.spec.seed
        if self.llm is None and self.spec.llm is not None:
            from progenitor.workflows.llm_usage import open_session

            self.llm = open_session(self)
        return AgentContext(spec=self.spec, run_id=self.run.run_id, workdir=self.run.path, seed=seed, llm=self.llm)

    def _agent(self, role: str, name: str) -> Any:
        from progenitor.agents import registry

        if role not in self._agents:
            made = self.factories.get(role) or registry.factory(role, name)
            self._agents[role] = made(self.agent_context())
        return self._agents[role]

    @property
    def architect(self) -> Architect:
        return self._agent("architect", self.options.architect or self.spec.agents.architect)

    @property
    def coder(self) -> Coder:
        return self._agent("coder", self.options.coder or self.spec.agents.coder)

    @property
    def reviewers(self) -> list[Reviewer]:
        """The static review first (always), then the task's own reviewers."""
        from progenitor.agents import registry

        if "reviewers" not in self._agents:
            names = ["static", *[n for n in self.spec.agents.reviewers if n != "static"]]
            self._agents["reviewers"] = [registry.create("reviewer", n, self.agent_context()) for n in names]
        return self._agents["reviewers"]

    def emit(self, event: Event) -> None:
        """Write ``event`` to the run's log and tell every listener."""
        event = self.run.emit(event)
        for listener in self.listeners:
            listener(event)
