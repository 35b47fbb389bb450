"""The agent seams: what an architect, a coder and a reviewer are, and the plain models they
take and give.

Agents are pure: they read the models handed to them and return models. They never emit
events, write the audit log, charge the ledger, commit, or touch the graph's state; the
nodes of ``progenitor.workflows`` do those, each in one place. Implementations are registered
by name (``progenitor.agents.registry``), so a new agent is one class and one registration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from progenitor.candidate.evidence import PairedTest
from progenitor.candidate.findings import Finding
from progenitor.candidate.lesson import Lesson
from progenitor.candidate.proposal import Proposal
from progenitor.errors import UserError
from progenitor.task.constitution import Constitution
from progenitor.task.spec import TaskSpec

__all__ = [
    "AgentContext", "Architect", "Baseline", "ChangedFile", "CodeChange", "Coder", "Failure", "FileEdit", "JournalEntry",
    "Lesson", "Observation", "Outcome", "Parent", "Proposal", "ProposeContext", "Reviewer", "ReviewInput",
]


class ChangedFile(BaseModel):
    path: str
    """Path in the candidate's tree (for a rename: the new path)."""
    status: Literal["A", "M", "D", "R", "T"]
    old_path: Optional[str] = None


class ReviewInput(BaseModel):
    """One candidate's change, as every reviewer reads it."""

    spec: TaskSpec
    """The base commit's spec."""
    base_tree: Path
    """Trusted export of the base commit."""
    candidate_tree: Path
    """The candidate's tree (read only: never executed by a reviewer)."""
    changed: list[ChangedFile]
    """What the candidate added, changed, renamed or deleted, against its parent."""
    constitution: Optional[Constitution] = None
    """The base's constitution, loaded once per run (None: loaded from ``base_tree``)."""
    gen: int = 0
    k: int = 0
    """Which candidate (an LLM reviewer's calls are keyed by it)."""
    hypothesis: str = ""
    """What the change claims to do (a change its hypothesis does not explain is suspicious)."""
    diff: str = ""
    """The unified diff against the champion, for reviewers that read one (the static checks read the trees)."""
    parent_files: Optional[dict[str, bytes]] = None
    """The parent's (champion's) version of each changed Python file, by its path there, so that
    what the parent already had is not the candidate's finding; None: read from ``base_tree``."""


class Observation(BaseModel):
    """What became of a proposal, told back to the architect that made it."""

    status: str
    """The candidate's final status: scored, failed, rejected, timeout, oom, pruned, ..."""
    value: Optional[float] = None
    """The objective, when scored."""
    reason: str = ""


class Outcome(BaseModel):
    """One candidate of a decided generation, as its lesson is written from it (``reflect``)."""

    name: str
    """``g<gen>/c<k>``."""
    status: str
    hypothesis: str = ""
    plan: str = ""
    params: dict[str, Any] = {}
    value: Optional[float] = None
    reason: str = ""
    verdict: str = ""
    """Its decision: promoted, not promoted, rejected, ..."""
    parent: str = ""
    """The node it was built on."""
    parent_value: Optional[float] = None
    parent_params: dict[str, Any] = {}
    versus_parent: Optional[PairedTest] = None
    """The paired test against its parent, when the scorer gives per-example scores for both."""


class Baseline(BaseModel):
    """The human baseline, told to an architect once, before its first proposal."""

    params: dict[str, Any] = {}
    """Values of the search-space keys in the baseline's config file."""
    metrics: dict[str, float]
    value: float
    """The objective."""


class Parent(BaseModel):
    """A node of the lineage a candidate is built on (``search.parents``)."""

    name: str
    """``g<gen>/c<k>`` (``g0/c0``: the human baseline)."""
    sha: str
    value: Optional[float] = None
    """Its objective (a node that crashed: its own parent's, what it might score once it runs)."""
    params: dict[str, Any] = {}
    """Its search-space values."""
    metrics: dict[str, float] = {}
    children: int = 0
    """Candidates already built on it."""
    kind: Literal["improve", "debug"] = "improve"
    """``improve``: build on it; ``debug``: it crashed in training, fix it."""
    hypothesis: str = ""
    reason: str = ""
    """Why it crashed (a debug node)."""


class JournalEntry(BaseModel):
    """One earlier candidate, as the architect reads the lineage."""

    gen: int
    k: int
    run: str = ""
    """The run it belongs to, when it is an earlier run's (``ProposeContext.earlier``)."""
    parent: str = ""
    """The node it was built on (``g<gen>/c<k>``)."""
    lesson: Optional[Lesson] = None
    """What it taught (written after its generation was decided)."""
    status: str
    hypothesis: str = ""
    plan: str = ""
    params: dict[str, Any] = {}
    value: Optional[float] = None
    reason: str = ""
    verdict: str = ""
    """promoted, not promoted, rejected, failed, ..."""
    findings: list[str] = []
    """What the safety review or the checks after scoring found: ``rule (severity): message``."""
    fix_of: Optional[int] = None
    """Set on a coder's fix of a crashed candidate: that candidate's index."""
    metrics: dict[str, float] = {}
    """Every metric the trusted scorer measured for it (the objective and the guards)."""
    train_seconds: Optional[float] = None
    """How long its training ran (None: it never trained)."""
    diff: str = ""
    """The diff it committed, against its parent, cut to the prompt's budget (empty: none, or no room)."""


class ProposeContext(BaseModel):
    gen: int
    count: int
    """How many proposals the generation wants."""
    pending: list[str] = []
    """Candidates proposed before and not decided yet (``g<gen>/c<k>``): in the asynchronous mode,
    those still training or being scored while this proposal is asked for. Their results come
    later, through ``observe``."""
    spec: TaskSpec
    champion_params: dict[str, Any] = {}
    """Current values of the search-space keys in the champion's config file."""
    champion_metrics: dict[str, float] = {}
    """The champion's trusted scores."""
    champion_tree: Optional[Path] = None
    """A checkout of the champion to read (never to write): its code, and the research brief."""
    journal: list[JournalEntry] = []
    """Every earlier candidate of the run, oldest first."""
    feedback: list[str] = []
    """Comments from human decisions, newest last."""
    baseline_metrics: dict[str, float] = {}
    """The human baseline's trusted scores (drift is measured against them)."""
    holdout_size: Optional[int] = None
    """Examples the holdout scores on (None: unknown): one example is worth ``1 / n`` of an accuracy."""
    selection_luck: Optional[float] = None
    """How much choosing the best of the candidates compared so far (this generation's included)
    can flatter a score on its own (``evaluation.honesty``; None: ``objective.range`` not set)."""
    budget_left: list[str] = []
    """What is left of the run's budget, in words."""
    parents: list[Parent] = []
    """The node each candidate ``k`` builds on (``parents[k]``; empty: the champion, for all)."""
    earlier: list[JournalEntry] = []
    """Candidates of earlier runs on this repository, with their lessons, oldest first (from the
    git notes, so a clone of the lineage reads the same)."""

    def parent(self, k: int) -> Optional[Parent]:
        return self.parents[k] if k < len(self.parents) else None


class AgentContext(BaseModel):
    """What a registered agent is built from (``registry.create``)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    spec: TaskSpec
    """The run's (base commit's) task."""
    run_id: str
    workdir: Path
    """A directory the agent may keep its own state in (the run directory)."""
    seed: int = 0
    llm: Any = None
    """The run's ``progenitor.llm.LlmSession`` when the task has an ``llm:`` section: the models,
    the call cache, the account each request is settled with as it ends."""

    def require_llm(self, agent: str) -> Any:
        """``llm``, or a ``UserError`` saying that ``agent`` (``"llm coder"``) needs an ``llm:`` section."""
        if self.llm is None:
            raise UserError(f"the {agent} needs an llm: section in progenitor.yaml (llm.model at least)")
        return self.llm


class FileEdit(BaseModel):
    """One file of a change: its whole new text, or its removal."""

    path: str
    """Path in the tree, relative to its root."""
    content: Optional[str] = None
    """The file's new text; None removes the file."""

    @property
    def action(self) -> Literal["write", "delete"]:
        return "delete" if self.content is None else "write"


class CodeChange(BaseModel):
    """A change a coder proposes for a tree: the node writes its edits (never through a link,
    never into ``.git``) and commits them with its message."""

    message: str
    """The commit message (first line: the key and the hypothesis)."""
    edits: list[FileEdit] = []
    """Applied in order; a later edit of the same path wins."""


class Failure(BaseModel):
    """A candidate that crashed in training, for ``Coder.fix``."""

    candidate: str = ""
    """The crashed candidate's name (``g1/c0``): the fix is a new candidate of its own."""
    status: str
    reason: str
    log_tail: str = ""


@runtime_checkable
class Architect(Protocol):
    """Proposes the candidates of a generation and learns what became of them."""

    name: str

    def seed(self, baseline: Baseline) -> None:
        """Told the human baseline once, before the first proposal."""
        ...

    def propose(self, ctx: ProposeContext) -> list[Proposal]: ...

    def observe(self, proposal: Proposal, observation: Observation) -> None:
        """Told what became of each proposal once its generation is decided (again on a resume:
        an implementation ignores what it was told already)."""
        ...

    # Optional: ``reflect(gen, outcomes) -> list[Lesson]``, one lesson per outcome, written once
    # the generation is decided. An architect without it gets lessons computed from the numbers
    # (``agents.architect.lessons``). Not part of the protocol, so that an architect written
    # before it (three methods) still is one.


@runtime_checkable
class Coder(Protocol):
    """Turns a proposal into a change of the champion's tree. It reads ``tree`` (a temporary
    checkout) and returns the edits; it writes nothing: the node applies and commits them."""

    name: str

    def apply(self, proposal: Proposal, tree: Path) -> CodeChange: ...

    def fix(self, proposal: Proposal, tree: Path, failure: Failure) -> Optional[CodeChange]:
        """Try to repair a candidate that crashed in training (None: this coder does not fix)."""
        ...


@runtime_checkable
class Reviewer(Protocol):
    """Findings about a change, before any of its code runs."""

    name: str

    def review(self, change: ReviewInput) -> list[Finding]: ...
