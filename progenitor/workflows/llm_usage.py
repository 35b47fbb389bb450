"""The workflow's side of the LLM agents: their session, the ledger and events for their calls,
and what each candidate's calls cost.

- ``open_session``: the run's ``LlmSession``: its call cache in the run directory, its account
  a ``RunAccount``.
- ``check_llm`` and ``preflight_models``: before a run prepares anything, every model's key variable
  is set, and each model answers one one-token request (charged to the run's ledger).
- ``RunAccount``: each request, the moment it ends, charged to the ledger (by request id, so a
  replayed one is never charged twice) and saved, told as its ``llm.call`` event, and one warning
  per model nobody can price; before a paid request, a ``Refusal`` once a stop was asked for or
  ``budget.dollars`` is spent. Nothing is collected for a node to drain: agents return only
  their work, and spend leaves as the typed record of each request. ``recover``: when a run
  session opens, every request in the run's call cache that the ledger does not hold yet (its
  process died between the reply and its charge) is charged, one left under way at its
  estimate: no paid request is lost.
- ``candidate_llm``: a candidate's LLM spend for its record: its own calls (code, review,
  fix) plus an equal share of its generation's architect call; ``candidate_cost``: that and
  its trainings' seconds, as its record and the gate's payload show them.

Budget: ``check_caps`` still ends the run after the generation in which the dollars are
spent; within a generation no paid request starts once they are (those under way finish, so
the cap can be passed by them, at most ``llm.parallel``). A proposal, edit or review refused so
(``LlmBudgetSpent``) is recorded on its candidate with the status ``budget``, and the run ends
when the generation does.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Optional

from progenitor.candidate import CandidateCost
from progenitor.candidate.keys import CandidateKey, generation_job
from progenitor.errors import UserError
from progenitor.run.events import LlmCall, LlmPreflight, LlmRecovered, RunWarning
from progenitor.run.ledger import LlmCost
from progenitor.run.rundir import read_json
from progenitor.task.spec import LLM_AGENTS, TaskSpec

if TYPE_CHECKING:
    from progenitor.workflows.state import RunContext

__all__ = ["RunAccount", "candidate_cost", "candidate_llm", "charge_probes", "check_llm", "llm_roles", "open_session",
           "preflight_models", "recover"]


def llm_roles(spec: TaskSpec, architect: Optional[str] = None, coder: Optional[str] = None) -> list[str]:
    """The roles this run gives to a built-in LLM agent."""
    names = {"architect": [architect or spec.agents.architect], "coder": [coder or spec.agents.coder],
             "reviewer": spec.agents.reviewers}
    return [role for role, chosen in names.items() if any(n in LLM_AGENTS[role] for n in chosen)]


def check_llm(spec: TaskSpec, architect: Optional[str] = None, coder: Optional[str] = None) -> list[str]:
    """Every LLM agent the run will ask has a model and its key variable is set; the roles."""
    roles = llm_roles(spec, architect, coder)
    if not roles:
        return roles
    from progenitor.llm.provider import missing_keys

    if spec.llm is None:
        raise UserError(f"agents: the {roles[0]} is an LLM agent but progenitor.yaml has no llm: section; "
                        "add one (llm: {model: openai/gpt-4o-mini}, say)")
    for role in roles:
        chain = spec.llm.chain(role)
        if not chain:
            raise UserError(f"llm: no model for the {role}; set llm.model (the default) or llm.{role}")
        for ep in chain:
            missing = missing_keys(ep)
            if missing:
                raise UserError(f"llm: the key of {ep.model} is read from ${missing[0]}, which is not set")
    return roles


def preflight_models(spec: TaskSpec, roles: list[str]) -> list:
    """Each model the run's roles use (fallbacks included), asked for one token; ``LlmUnavailable``
    naming the first that did not answer (its ``probes``: every probe sent). The probes, to be
    charged once the run has a ledger."""
    if not roles or spec.llm is None:
        return []
    from progenitor.errors import LlmUnavailable
    from progenitor.llm.probe import probe_model

    models = {ep.model: ep for role in roles for ep in spec.llm.chain(role)}
    probes = [probe_model(ep, spec.llm) for ep in models.values()]
    for probe in probes:
        if not probe.ok:
            failed = LlmUnavailable(f"llm: {probe.model} {probe.detail}; nothing was started (a one-token request "
                                    "before preparing any data; --no-preflight skips it)")
            failed.probes = probes  # a resumed run charges them to its ledger all the same: they were sent
            raise failed
    return probes


def charge_probes(ledger, run_id: str, probes: list, emit) -> None:
    """Charge a run's preflight requests (``preflight/<session>/<i>``) and say how each went."""
    done = {cid.split("/")[-2] for cid in ledger.data.llm_calls if "/preflight/" in cid}
    session = f"s{len(done)}"
    for i, probe in enumerate(probes):
        out = probe.outcome or {}
        if out:
            ledger.add_llm("preflight", out["dollars"], out["prompt_tokens"], out["completion_tokens"],
                           call_id=f"{run_id}/preflight/{session}/{i}", model=probe.model,
                           outcome=out["kind"], estimated=out["estimated"])
        emit(LlmPreflight(model=probe.model, ok=probe.ok, detail=probe.detail, dollars=round(out.get("dollars", 0.0), 6)))
    ledger.save()


def open_session(ctx):
    """The run's LLM session, or None when the task has no ``llm:`` section."""
    from progenitor.llm import LlmSession

    if ctx.spec.llm is None:
        return None
    return LlmSession(ctx.spec.llm, cache_dir=ctx.run.llm, account=RunAccount(ctx))


class RunAccount:
    """The run's side of the LLM layer (``llm.calls.Account``): requests of a generation run side
    by side, so the ledger is read and written under one lock."""

    def __init__(self, ctx: "RunContext"):
        self.ctx = ctx
        self._lock = threading.Lock()
        self._warned: set[str] = set()

    def refusal(self):
        from progenitor.llm.calls import Refusal

        stop = self.ctx.run.stop_requested()
        if stop:
            return Refusal(kind="stop", reason=stop)
        cap = self.ctx.spec.budget.dollars
        if cap is None or self.ctx.ledger is None:
            return None
        with self._lock:
            spent = self.ctx.ledger.totals().dollars
        if spent >= cap:
            return Refusal(kind="budget", reason=f"budget reached: {spent:.4g} of {cap:g} LLM dollars spent")
        return None

    def record(self, call) -> None:
        ctx = self.ctx
        with self._lock:
            if _charge_one(ctx, call):
                ctx.ledger.save()
            warn = not call.priced and call.model not in self._warned
            self._warned.add(call.model)
        ctx.emit(LlmCall(role=call.role, gen=call.gen, k=call.k, call=call.id, model=call.model,
                         prompt_tokens=call.prompt_tokens, completion_tokens=call.completion_tokens,
                         dollars=round(call.dollars, 6), cached=call.cached, seconds=call.seconds, outcome=call.outcome,
                         estimated=call.estimated, status=call.status, error=call.error, retry_after=call.retry_after,
                         finish_reason=call.finish_reason))
        if warn:
            ctx.emit(RunWarning(message=(f"no price for {call.model} in litellm's table or llm.prices: its calls "
                                         "count as $0 (set llm.prices to count them)")))


def _charge_one(ctx, call) -> bool:
    """Charge one request to the ledger, once (by its id); True when it was charged now."""
    if ctx.ledger is None:
        return False
    job = generation_job(ctx.run.run_id, call.gen) if call.k is None else CandidateKey(
        run=ctx.run.run_id, gen=call.gen, k=call.k).job
    return ctx.ledger.add_llm(call.role, call.dollars, call.prompt_tokens, call.completion_tokens, candidate=job,
                              call_id=f"{ctx.run.run_id}/{call.id}", model=call.model, outcome=call.outcome,
                              estimated=call.estimated)


def recover(ctx) -> None:
    """When a run session opens: charge what the run's call cache holds and the ledger does not
    (a process killed before its node ended); a request left under way at its estimate."""
    if ctx.spec.llm is None or ctx.ledger is None or not ctx.run.llm.is_dir():
        return
    from progenitor.llm.cache import CallCache
    found = [call for call in CallCache(ctx.run.llm).settle() if _charge_one(ctx, call)]
    for call in found:
        ctx.emit(LlmRecovered(role=call.role, gen=call.gen, k=call.k, call=call.id, model=call.model,
                              outcome=call.outcome, estimated=call.estimated, dollars=round(call.dollars, 6)))
    if found:
        ctx.ledger.save()


def candidate_llm(ctx, gen: int, k: int) -> LlmCost:
    """A candidate's LLM spend: its own calls plus its share of the generation's architect call."""
    own = ctx.ledger.llm(candidate=CandidateKey(run=ctx.run.run_id, gen=gen, k=k).job)
    proposed = {p.get("k") for p in read_json(ctx.run.proposals(gen)) or []}
    if k in proposed:  # a fix reuses its crashed candidate's proposal: it has no share of its own
        own.dollars += ctx.ledger.llm(candidate=generation_job(ctx.run.run_id, gen)).dollars / len(proposed)
    return own


def candidate_cost(ctx: "RunContext", key: CandidateKey) -> Optional[CandidateCost]:
    """What a candidate has cost so far: its trainings' seconds and its LLM dollars (None: no ledger)."""
    if ctx.ledger is None:
        return None
    llm = candidate_llm(ctx, key.gen, key.k)
    spent_llm = {"dollars": round(llm.dollars, 6), "llm_calls": llm.calls, "prompt_tokens": llm.prompt_tokens,
                 "completion_tokens": llm.completion_tokens}
    spent = ctx.ledger.candidate(key.job)
    if spent is None:
        return CandidateCost(**spent_llm)
    return CandidateCost(cpu_seconds=round(spent.cpu_seconds, 3), gpu_seconds=round(spent.gpu_seconds, 3),
                         wall_seconds=round(spent.wall_seconds, 3), attempts=len(spent.attempts), **spent_llm)
