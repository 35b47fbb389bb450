"""The asynchronous mode (``search.mode: async``): a candidate proposed each time a slot frees.

The same nodes as the generation mode, in another order. Every candidate is a generation of
one (``g<n>/c0``, ``budget.generations x budget.candidates`` of them). ``launch`` opens the next
one; the architect proposes one candidate against the champion and the archive as they are at
that moment (told which candidates are still under way, ``ProposeContext.pending``); the coder,
the review and the training check run as always; ``submit`` hands it to the candidate pool
(``workflows.pool``) and does not wait. While a slot is free and the budget allows, the graph
launches again; otherwise ``harvest`` waits until a slot frees (then launches) or a generation
is done, trained and scored (then takes it back and decides it: ``trainer`` looks its
training up, ``scorer``, ``repeats``, ``select``, ``oversight``, ``promote``, against the
champion *now*). A promotion a person must decide interrupts the graph as always: the process
waiting at the gate keeps its pool, so what was already training goes on (at most one
candidate per slot), and nothing new starts until the person decides.

Resuming: the generations in the pool are kept in the checkpoint (``Flow.inflight``) and handed
to the new session's pool again; a training that finished is looked up, one that was cut off
trains again. Reproducible for a seed with one slot, where each proposal waits for the
candidate before it to be decided; with more, what the architect knows when it proposes depends
on which training ended first.
"""

from __future__ import annotations

from progenitor.errors import RunStopped
from progenitor.workflows.state import RunContext, State, Update
from progenitor.workflows.training import prune_config

__all__ = ["after_harvest", "after_promote", "can_launch", "harvest", "launch", "submit"]

POLL_SECONDS = 0.5
"""How often ``harvest`` looks again while nothing changed (the pool also wakes it at each change)."""


def _pool(ctx: RunContext):
    from progenitor.workflows import pool

    return pool.of(ctx)


def _hand_in(ctx: RunContext, state: State) -> None:
    """Hand every waiting candidate to the pool (those it has already are left as they are): after a
    resume, the new session's pool gets what the one before was training."""
    from progenitor.workflows.nodes import submit_baseline

    if state.baseline is None:
        submit_baseline(ctx, state.base)
    pool = _pool(ctx)
    prune = prune_config(ctx, state.champion)
    for cand in state.flow.inflight:
        if cand.status == "reviewed":
            pool.submit(cand.key, cand.sha, prune)


def can_launch(ctx: RunContext, state: State) -> bool:
    """Whether to propose another candidate now: the budget allows one, no stop is asked for or
    reason to end found, and a slot of the executor is free."""
    if state.stop_reason or ctx.run.stop_requested():
        return False
    if state.flow.next > ctx.spec.generations_total:
        return False
    if ctx.ledger is not None and ctx.ledger.check_caps(ctx.spec.budget):
        return False
    pool = _pool(ctx)
    return pool.training() < pool.slots()


# -- nodes ------------------------------------------------------------------------------------
def launch(ctx: RunContext, state: State) -> Update:
    """Open the next generation (of one candidate): the architect proposes it next."""
    _hand_in(ctx, state)
    gen = state.flow.next
    return Update(generation=gen, candidates=[], selection=None, decision=None, approved=[], request=None,
                  flow=state.flow.model_copy(update={"next": gen + 1, "step": "decide"}))


def submit(ctx: RunContext, state: State) -> Update:
    """Hand the generation's reviewed candidates to the pool (trained when a slot is free, scored
    as each ends) and keep the generation waiting, without waiting for it."""
    kept = [c for c in state.flow.inflight if c.gen != state.generation]
    flow = state.flow.model_copy(update={"inflight": [*kept, *state.candidates]})
    _hand_in(ctx, state.model_copy(update={"flow": flow}))  # after a resume, what the pool had before comes first
    return Update(candidates=[], flow=flow)


def _done(ctx: RunContext, cands: list) -> bool:
    """Every reviewed candidate of a generation trained and, if it trained well, scored."""
    pool = _pool(ctx)
    for cand in cands:
        if cand.status != "reviewed":
            continue
        entry = pool.entry(cand.key)
        if entry is None or not entry.done:
            return False
    return True


def harvest(ctx: RunContext, state: State) -> Update:
    """Take back a waiting generation that is done, trained and scored (the oldest first), to
    decide it; else launch when a slot is free; else wait for either. Deciding comes first: its
    results are in the pool already, it takes a moment, and the next proposal then knows them
    (an architect slower than a training would otherwise propose the whole budget blind)."""
    _hand_in(ctx, state)
    pool = _pool(ctx)
    flow = state.flow
    settled = _settled_baseline(ctx, state)
    while True:
        pool.check()
        stop = ctx.run.stop_requested()
        if stop:  # nothing is taken back: the checkpoint stays before harvest, a resume hands them in again
            if pool.training() == 0:
                raise RunStopped(stop)
            pool.wait(POLL_SECONDS)
            continue
        if not settled:
            settled = _settled_baseline(ctx, state)
        for gen in flow.pending if settled else []:  # nothing is decided before the baseline is
            cands = [c for c in flow.inflight if c.gen == gen]
            if _done(ctx, cands):
                rest = [c for c in flow.inflight if c.gen != gen]
                return Update(**settled, generation=gen, candidates=cands, selection=None, decision=None,
                              request=None, approved=[], flow=flow.model_copy(update={"inflight": rest, "step": "decide"}))
        # One slot: the next proposal waits for the last candidate's decision (a score takes
        # seconds where a training takes minutes), so that a seed gives the same run twice.
        if can_launch(ctx, state) and not (flow.inflight and pool.slots() == 1):
            return Update(**settled, flow=flow.model_copy(update={"step": "launch"}))
        if not flow.inflight and settled:
            # Nothing waits and nothing may start (a cap reached since the last decision): the end.
            capped = ctx.ledger.check_caps(ctx.spec.budget) if ctx.ledger is not None else None
            return Update(**settled, stop_reason=state.stop_reason or capped
                          or f"budget: {ctx.spec.generations_total} candidates proposed",
                          flow=flow.model_copy(update={"step": "end"}))
        pool.wait(POLL_SECONDS)


def _settled_baseline(ctx: RunContext, state: State) -> dict:
    """The fields that make the trained baseline the first champion (``baseline``, ``champion``),
    once its training and scores are in; ``{"baseline": ...}`` as it is when it was settled before;
    ``{}`` while it still trains. Raises what a baseline that failed raises."""
    if state.baseline is not None:
        return {"baseline": state.baseline}
    from progenitor.candidate.keys import CandidateKey
    from progenitor.workflows.nodes import settle_baseline

    entry = _pool(ctx).entry(CandidateKey(run=ctx.run.run_id, gen=0, k=0))
    if entry is None or not entry.done or entry.cancelled:
        return {}
    _pool(ctx).check()
    baseline = settle_baseline(ctx, state.base, entry.record)
    return {"baseline": baseline, "champion": baseline}


# -- routers (they read the pool, so they close over the context) -------------------------------
def after_harvest(state: State) -> str:
    return {"launch": "launch", "end": "end"}.get(state.flow.step, "trainer")


def after_promote(ctx: RunContext, state: State) -> str:
    """To ``harvest`` (which decides, launches or ends), or the end when a reason to end was found
    and nothing is left in the pool. A stop asked for goes to ``harvest`` too, whose turn raises
    it: the run stays resumable, never ended by a stop."""
    if state.stop_reason and not state.flow.inflight and not ctx.run.stop_requested():
        return "end"
    return "harvest"
