"""The ledger: what a run has spent, per candidate and in total, kept as JSON in the run directory.

Training spend is CPU-seconds (measured by the sandbox, or ``cpus x duration`` when the
backend cannot tell), GPU-seconds (``gpus x duration``) and wall seconds. LLM spend is
dollars and tokens per request, summed per role (architect, coder, reviewer, preflight) and per
candidate (the architect's call is the generation's, ``<run>/g<gen>``). Every request is charged
once, by its id: an answer at the usage it reported, an error at nothing, a request aborted by a
timeout or by the run's own death at an estimate (marked ``estimated``: its prompt's tokens
plus ``max_tokens``, the most a provider can bill for it). The run's own wall time counts
only while a session of the run is going (a stopped run waiting to be resumed does not spend).

Recording is additive over distinct attempts and idempotent for replays: a resumed run that
looks a finished result up (a training, an LLM call replayed from the run's call cache) and
records it again changes nothing, while a candidate that was cancelled and trained again is
charged for both attempts, since both really ran.

A training is entered the moment it starts (``start``, saved before the run says it started),
and its entry is completed when its result comes back. A driver killed outright (``kill -9``)
never sees the results of what it had under way: the next session marks those entries
``interrupted`` (``start_clock``), so the ledger still counts every training that started, with
what was spent on it unknown (zero; the sandbox's own count died with the driver).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from pydantic import BaseModel, ConfigDict

from progenitor.candidate.keys import generation_of
from progenitor.run.rundir import write_json

if TYPE_CHECKING:
    from progenitor.compute.base import JobResult, TrainJob
    from progenitor.sandbox.base import SandboxResult
    from progenitor.task.spec import Budget


class Attempt(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: str
    """The sandbox's status: ok, failed, timeout, oom, disk or killed; ``started`` while it runs,
    ``interrupted`` when the driver was killed before it ended (its spend is then unknown)."""
    cpu_seconds: float
    """CPU time this attempt used."""
    cpu_measured: bool
    """True when ``cpu_seconds`` is the sandbox's own count, False when it is ``cpus x duration``."""
    gpu_seconds: float
    """GPUs held times wall seconds."""
    wall_seconds: float
    """How long the sandbox ran."""
    node: str = ""
    """Where it ran."""
    pruned_step: Optional[int] = None
    """The step at which early stopping ended it, if it did."""
    started_at: Optional[float] = None
    """When it started (Unix time), when the ledger saw it start."""
    ended: Optional[float] = None
    """The run's clock (``Ledger.run_wall_seconds``) when it ended: with ``wall_seconds``, when
    it held its slot (None in ledgers written before the field)."""

    def same(self, other: "Attempt") -> bool:
        """The same attempt, recorded twice (a replay), whenever it was recorded (seen to start, ended)."""
        return self.model_dump(exclude={"started_at", "ended"}) == other.model_dump(exclude={"started_at", "ended"})


class CandidateSpend(BaseModel):
    """The ledger's account of one candidate's trainings (its record's summary of them, LLM
    dollars added, is ``candidate.CandidateCost``)."""

    model_config = ConfigDict(extra="forbid")

    key: str
    """``<run>/g<gen>/c<k>``."""
    attempts: list[Attempt] = []
    """Every distinct training of this candidate, in order."""

    @property
    def cpu_seconds(self) -> float:
        return sum(a.cpu_seconds for a in self.attempts)

    @property
    def gpu_seconds(self) -> float:
        return sum(a.gpu_seconds for a in self.attempts)

    @property
    def wall_seconds(self) -> float:
        return sum(a.wall_seconds for a in self.attempts)


class LlmCost(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dollars: float = 0.0
    """Spend reported by the provider (or litellm's price table), estimates included."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    """Requests, whatever became of them."""
    estimated_dollars: float = 0.0
    """The part of ``dollars`` that is an estimate (aborted requests)."""

    def add(self, dollars: float, prompt_tokens: int, completion_tokens: int, estimated: bool = False) -> None:
        self.dollars += dollars
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.calls += 1
        if estimated:
            self.estimated_dollars += dollars


class LlmCharge(BaseModel):
    """One LLM call as charged (the key of ``LedgerData.llm_calls`` is its call id)."""

    model_config = ConfigDict(extra="forbid")

    role: str
    candidate: str = ""
    """``<run>/g<gen>/c<k>``, or ``<run>/g<gen>`` for the architect's call for the whole generation."""
    model: str = ""
    dollars: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    outcome: str = "ok"
    """ok, error, aborted or killed (``progenitor.llm.calls.OUTCOMES``)."""
    estimated: bool = False
    """Its dollars and tokens are an estimate (an aborted request)."""


class Totals(BaseModel):
    """Sums over a run (or one generation): what the CLI summary and ``status --json`` show."""

    candidates: int = 0
    attempts: int = 0
    cpu_seconds: float = 0.0
    gpu_seconds: float = 0.0
    train_wall_seconds: float = 0.0
    """Sum of the candidates' wall seconds (more than the run's wall time when they ran in parallel)."""
    run_wall_seconds: float = 0.0
    dollars: float = 0.0
    estimated_dollars: float = 0.0
    """The part of ``dollars`` that is an estimate (requests aborted by a timeout or a killed process)."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    slots: Optional[int] = None
    """Training slots of the executor (jobs of the task's size it runs at once)."""
    idle_slot_seconds: Optional[float] = None
    """``slots x run wall - training wall``: slot-seconds no training used (the run's whole time)."""

    @property
    def cpu_hours(self) -> float:
        return self.cpu_seconds / 3600

    @property
    def gpu_hours(self) -> float:
        return self.gpu_seconds / 3600

    @property
    def wall_hours(self) -> float:
        return self.run_wall_seconds / 3600

    @property
    def slot_occupancy(self) -> Optional[float]:
        """Training wall seconds over ``slots x run wall``: how busy the slots were (1 at best)."""
        room = (self.slots or 0) * self.run_wall_seconds
        return round(self.train_wall_seconds / room, 4) if room > 0 else None

    @property
    def slot_efficiency(self) -> Optional[float]:
        """Training CPU-seconds over ``slots x run wall`` (``bench/efficiency.py``'s figure)."""
        room = (self.slots or 0) * self.run_wall_seconds
        return round(self.cpu_seconds / room, 4) if room > 0 else None


class LedgerData(BaseModel):
    """The ledger's file: what survives the process."""

    model_config = ConfigDict(extra="forbid")

    version: int = 1
    candidates: dict[str, CandidateSpend] = {}
    llm: dict[str, LlmCost] = {}
    """By agent role (architect, coder, reviewer)."""
    llm_calls: dict[str, LlmCharge] = {}
    """Every charged LLM call by its id (``<run>/g<gen>/c<k>/<role>/<n>``): a replay is not charged twice."""
    run_wall_seconds: float = 0.0
    """Wall time of the run's finished sessions (the current one is added on top)."""
    slots: Optional[int] = None
    """Training slots of the executor, as the latest session counted them."""
    marks: dict[str, float] = {}
    """Moments of the run on its clock, by name, first time only (``prepared``: the baseline is scored)."""


class Ledger:
    """Spend of one run, persisted as JSON at ``path``; safe to use from several threads."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._session_start: Optional[float] = None
        self.data = LedgerData()
        if self.path.exists():
            self.data = LedgerData.model_validate_json(self.path.read_text(encoding="utf-8"))

    # --- recording -------------------------------------------------------------------

    def record(self, key: str, sandbox: "SandboxResult", cpus: float, gpus: float = 0.0,
               node: str = "", pruned_step: Optional[int] = None) -> CandidateSpend:
        """Charge one training attempt to candidate ``key``; a replay of the same attempt is a no-op."""
        measured = sandbox.cpu_seconds > 0
        attempt = Attempt(
            status=sandbox.status,
            cpu_seconds=sandbox.cpu_seconds if measured else cpus * sandbox.duration,
            cpu_measured=measured,
            gpu_seconds=gpus * sandbox.duration,
            wall_seconds=sandbox.duration,
            node=node,
            pruned_step=pruned_step,
            ended=round(self.run_wall_seconds(), 3),
        )
        with self._lock:
            cost = self.data.candidates.setdefault(key, CandidateSpend(key=key))
            under_way = next((i for i, a in enumerate(cost.attempts) if a.status == "started"), None)
            if under_way is not None:  # the entry made when it started, completed
                started = cost.attempts[under_way].started_at
                cost.attempts[under_way] = attempt.model_copy(update={"started_at": started})
            elif not any(attempt.same(a) for a in cost.attempts):
                cost.attempts.append(attempt)
            return cost.model_copy(deep=True)

    def start(self, key: str, node: str = "") -> None:
        """Enter a training of candidate ``key`` that starts now (``record`` completes the entry)."""
        attempt = Attempt(status="started", cpu_seconds=0.0, cpu_measured=False, gpu_seconds=0.0, wall_seconds=0.0,
                          node=node, started_at=round(time.time(), 3))
        with self._lock:
            self.data.candidates.setdefault(key, CandidateSpend(key=key)).attempts.append(attempt)

    def _interrupt(self) -> None:
        """Entries still ``started`` belong to a session that is gone: ``interrupted``."""
        for cost in self.data.candidates.values():
            for i, attempt in enumerate(cost.attempts):
                if attempt.status == "started":
                    cost.attempts[i] = attempt.model_copy(update={"status": "interrupted"})

    def record_job(self, job: "TrainJob", result: "JobResult") -> CandidateSpend:
        """Charge a finished ``JobResult`` with the CPUs and GPUs its ``TrainJob`` held."""
        gpus = job.num_gpus or float(len(result.gpu_ids))
        step = (result.pruned or {}).get("step")
        return self.record(result.key, result.sandbox, job.limits.cpus, gpus, result.node,
                           step if isinstance(step, int) else None)

    def add_llm(self, agent: str, dollars: float = 0.0, prompt_tokens: int = 0, completion_tokens: int = 0, *,
                candidate: str = "", call_id: Optional[str] = None, model: str = "", outcome: str = "ok",
                estimated: bool = False) -> bool:
        """Charge one LLM request to its role (and its candidate); with ``call_id``, a request
        charged already (a replay) is not charged again. True when it was charged now."""
        with self._lock:
            if call_id is not None:
                if call_id in self.data.llm_calls:
                    return False
                self.data.llm_calls[call_id] = LlmCharge(role=agent, candidate=candidate, model=model, dollars=dollars,
                                                         prompt_tokens=prompt_tokens,
                                                         completion_tokens=completion_tokens, outcome=outcome,
                                                         estimated=estimated)
            self.data.llm.setdefault(agent, LlmCost()).add(dollars, prompt_tokens, completion_tokens, estimated)
            return True

    def llm(self, candidate: Optional[str] = None, generation: Optional[int] = None) -> LlmCost:
        """LLM spend on one candidate (its key exactly) or one generation (its architect call too)."""
        total = LlmCost()
        with self._lock:
            for charge in self.data.llm_calls.values():
                if candidate is not None and charge.candidate != candidate:
                    continue
                if generation is not None and generation_of(charge.candidate) != generation:
                    continue
                total.add(charge.dollars, charge.prompt_tokens, charge.completion_tokens, charge.estimated)
        return total

    # --- the run's clock -------------------------------------------------------------

    def start_clock(self) -> None:
        """Start counting this session's wall time (call when a run starts or resumes)."""
        with self._lock:
            if self._session_start is None:
                self._session_start = time.monotonic()
                self._interrupt()  # a new session: whatever the last one had under way is over

    def stop_clock(self) -> None:
        """Fold this session's wall time into the total and stop counting."""
        with self._lock:
            self._fold_clock()
            self._session_start = None

    def _fold_clock(self) -> None:
        if self._session_start is not None:
            now = time.monotonic()
            self.data.run_wall_seconds += now - self._session_start
            self._session_start = now

    def run_wall_seconds(self) -> float:
        with self._lock:
            running = time.monotonic() - self._session_start if self._session_start is not None else 0.0
            return self.data.run_wall_seconds + running

    # --- slots -----------------------------------------------------------------------

    def set_slots(self, slots: int) -> None:
        with self._lock:
            self.data.slots = slots

    def mark(self, name: str) -> float:
        """Note when ``name`` happened on the run's clock (the first time only); returns it."""
        now = round(self.run_wall_seconds(), 3)
        with self._lock:
            return self.data.marks.setdefault(name, now)

    def busy_seconds(self, start: float, end: float) -> float:
        """Slot-seconds training used between ``start`` and ``end`` on the run's clock (each
        attempt from its end back by its wall seconds; attempts of older ledgers, which lack
        their end, are left out)."""
        with self._lock:
            spans = [(a.ended - a.wall_seconds, a.ended) for c in self.data.candidates.values()
                     for a in c.attempts if a.ended is not None]
        return sum(max(0.0, min(end, b) - max(start, a)) for a, b in spans)

    def idle_slot_seconds(self, start: float = 0.0, end: Optional[float] = None) -> Optional[float]:
        """``slots x (end - start)`` minus what training used of it (None until slots are known)."""
        slots = self.data.slots
        if slots is None:
            return None
        end = self.run_wall_seconds() if end is None else end
        return round(max(0.0, slots * (end - start) - self.busy_seconds(start, end)), 3)

    # --- reading ---------------------------------------------------------------------

    def totals(self, generation: Optional[int] = None) -> Totals:
        """Sums over the run, or over one generation's candidates (keys ``<run>/g<gen>/c<k>``)."""
        wall = self.run_wall_seconds()
        with self._lock:
            costs = [c for c in self.data.candidates.values()
                     if generation is None or generation_of(c.key) == generation]
            llm = LlmCost()
            if generation is None:
                for cost in self.data.llm.values():
                    llm.dollars += cost.dollars
                    llm.estimated_dollars += cost.estimated_dollars
                    llm.prompt_tokens += cost.prompt_tokens
                    llm.completion_tokens += cost.completion_tokens
            else:
                for charge in self.data.llm_calls.values():
                    if generation_of(charge.candidate) == generation:
                        llm.add(charge.dollars, charge.prompt_tokens, charge.completion_tokens, charge.estimated)
            totals = Totals(
                candidates=len(costs),
                attempts=sum(len(c.attempts) for c in costs),
                cpu_seconds=sum(c.cpu_seconds for c in costs),
                gpu_seconds=sum(c.gpu_seconds for c in costs),
                train_wall_seconds=sum(c.wall_seconds for c in costs),
                run_wall_seconds=wall if generation is None else 0.0,
                dollars=llm.dollars, estimated_dollars=llm.estimated_dollars,
                prompt_tokens=llm.prompt_tokens, completion_tokens=llm.completion_tokens,
                slots=self.data.slots,
            )
        return totals if generation is not None else self._with_idle(totals)

    def _with_idle(self, totals: Totals) -> Totals:
        """The run's totals with its idle slot-seconds: every slot over the run's whole time,
        less the training seconds (older attempts, without their end, count too)."""
        if totals.slots is not None:
            totals.idle_slot_seconds = round(max(0.0, totals.slots * totals.run_wall_seconds
                                                 - totals.train_wall_seconds), 3)
        return totals

    def candidate(self, key: str) -> Optional[CandidateSpend]:
        with self._lock:
            cost = self.data.candidates.get(key)
            return cost.model_copy(deep=True) if cost else None

    def check_caps(self, budget: "Budget") -> Optional[str]:
        """The reason to stop when a cap of ``budget`` is reached, else None."""
        t = self.totals()
        caps = [
            ("CPU-hours", budget.cpu_hours, t.cpu_hours),
            ("GPU-hours", budget.gpu_hours, t.gpu_hours),
            ("wall-clock hours", budget.wall_hours, t.wall_hours),
            ("LLM dollars", budget.dollars, t.dollars),
        ]
        for name, cap, spent in caps:
            if cap is not None and spent >= cap:
                return f"budget reached: {spent:.4g} of {cap:g} {name} spent"
        return None

    def summary(self) -> dict:
        """Totals with hours, for the CLI summary and ``status --json``."""
        t = self.totals()
        with self._lock:
            llm = {role: cost.model_dump() for role, cost in sorted(self.data.llm.items())}
        return {**t.model_dump(), "cpu_hours": t.cpu_hours, "gpu_hours": t.gpu_hours, "wall_hours": t.wall_hours,
                "slot_occupancy": t.slot_occupancy, "slot_efficiency": t.slot_efficiency, "llm": llm}

    # --- persistence -----------------------------------------------------------------

    def save(self) -> None:
        """Write the ledger atomically (a crash mid-write leaves the previous file)."""
        with self._lock:  # one writer at a time: trainings start, end and save on several threads
            self._fold_clock()
            write_json(self.path, self.data.model_dump(mode="json"))


def load_ledger(path: Path) -> dict:
    """The summary of a ledger file, zeros if there is none yet (for ``status --json``)."""
    return Ledger(path).summary()
