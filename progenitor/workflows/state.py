"""The graph's state, and the context its nodes close over.

The state holds only plain data (it is checkpointed after every node): each candidate is
the JSON of its ``Candidate`` record, the champion and each finished generation a small
model's JSON, so that a checkpoint reads like the run's own files. The nodes turn them
back into models (``candidates``, ``champion``) and hand back JSON. The context holds the
live objects (repo, run directory, agents, executor) and is rebuilt on resume.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, TypedDict

from pydantic import BaseModel

from progenitor.agents.base import AgentContext, Architect, Coder, Reviewer
from progenitor.candidate import Candidate
from progenitor.candidate.champion import Champion
from progenitor.lineage import Lineage
from progenitor.options import RunOptions
from progenitor.oversight.audit import AuditLog
from progenitor.run.rundir import RunDir
from progenitor.task.spec import TaskSpec


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


class GenerationSummary(BaseModel):
    gen: int
    promoted: Optional[int] = None
    champion: str
    champion_value: float
    best_value: Optional[float] = None
    counts: dict[str, int] = {}
    spend: dict = {}
    trained: int = 0
    """Its candidates that reached training (a run in which none does for ``budget.stall_after``
    generations in a row ends, exit code 3)."""
    untrained: str = ""
    """When none was trained: why, in a sentence (the architect's failure, or each candidate's end)."""


AgentFactory = Callable[[AgentContext], Any]


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
    factories: dict[str, AgentFactory] = field(default_factory=dict)
    """Agents given by the caller (the API's ``architect=``), by role; the rest come from the registry."""
    constitution: Any = None
    """The base commit's constitution, loaded once (``nodes.constitution``)."""
    ledger: Any = None
    """The run's Ledger: CPU/GPU/wall seconds per candidate, LLM spend."""
    listeners: list[Callable[[dict], None]] = field(default_factory=list)
    executor: Any = None
    llm: Any = None
    """The run's LLM session (``workflows.llm_usage.open_session``), when the task has an llm: section."""
    _agents: dict[str, Any] = field(default_factory=dict)

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

    def emit(self, kind: str, **payload: Any) -> None:
        event = self.run.emit(kind, **payload)
        for listener in self.listeners:
            listener(event)

    # -- the candidates of the state, typed ---------------------------------------------------
    @staticmethod
    def candidates(state: RunState) -> list[Candidate]:
        return [Candidate.from_record(c) for c in state.get("candidates", [])]

    @staticmethod
    def champion(state: RunState) -> Champion:
        return Champion.model_validate(state["champion"])
