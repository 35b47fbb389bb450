"""Driving a run across its gates: stream the graph until it ends or interrupts; at a gate,
open it in the decision store, say the run waits and for what, and wait for a decision made
anywhere (this process, another shell, the web page), then resume the graph with it.

When a gate opens, people are told (``oversight.notify``). Waiting ends with a decision, or without one when the caller detached (``run --detach``) or
a stop was asked for (Ctrl-C, ``progenitor stop``): the run then stays ``waiting``, and a
decision followed by ``progenitor resume`` (or a run process still waiting) carries it on.
"""

from __future__ import annotations

import time
from typing import Any, Optional

from progenitor.oversight.notify import notify
from progenitor.oversight.store import Gate
from progenitor.run.events import GateDecided, GateNotified, GateWaiting
from progenitor.run.rundir import now_iso
from progenitor.workflows import card
from progenitor.workflows.state import RunContext

__all__ = ["drive", "how_to_decide", "pending_request"]


def pending_request(graph: Any, config: dict) -> Optional[dict]:
    """The request of the gate the graph is interrupted at, if it is."""
    state = graph.get_state(config)
    interrupts = getattr(state, "interrupts", ()) or ()
    return interrupts[0].value if interrupts else None


def how_to_decide(run_id: str, gate: str) -> str:
    return (f"decide with: progenitor approve {run_id} | reject {run_id} --comment ... | "
            f"request-changes {run_id} --comment ... (or the page: progenitor ui); "
            f"then 'progenitor resume {run_id}' goes on, unless a process still waits for {gate}")


def tell(ctx: RunContext, gate: Gate) -> None:
    """Tell people the gate opened (``oversight.notify``), once per gate, each outcome in the
    audit log (a resumed run finds the entry and tells no one twice)."""
    config = ctx.spec.oversight.notify
    key = f"{ctx.run.run_id}/{gate.gate}/notify"
    if config is None or ctx.audit.find(key) is not None:
        return
    notices = notify(config, gate.request)
    for n in notices:
        ctx.emit(GateNotified(gate=gate.gate, gen=gate.gen, channel=n.channel, ok=n.ok, attempts=n.attempts,
                              detail=n.detail))
    told = "; ".join(f"{n.channel} {n.target}: {'told' if n.ok else 'FAILED'} after {n.attempts} attempt(s) "
                     f"({n.detail})" for n in notices)
    ctx.audit.append(key=key, action="notify", actor="platform", run=ctx.run.run_id, gen=gate.gen, commit=None,
                     payload_sha256=gate.payload_sha256, comment=told, gate=gate.gate,
                     notices=[n.model_dump() for n in notices])


def _wait(ctx: RunContext, gate: Gate, detach: bool) -> Optional[dict]:
    """The decision's response once there is one; None when leaving the run waiting."""
    store = ctx.store
    decided = store.decision(ctx.run.run_id, gate.gate)
    if decided is None:
        tell(ctx, gate)
        ctx.run.update_meta(status="waiting", waiting={
            "gate": gate.gate, "kind": gate.kind, "gen": gate.gen, "description": gate.description,
            "since": now_iso(), "payload_sha256": gate.payload_sha256})
        ctx.emit(GateWaiting(gate=gate.gate, gate_kind=gate.kind, gen=gate.gen, description=gate.description,
                 how=how_to_decide(ctx.run.run_id, gate.gate), detached=detach))
    poll = ctx.spec.oversight.poll_seconds
    while decided is None:
        if detach or ctx.run.stop_requested():
            return None
        time.sleep(poll)
        decided = store.decision(ctx.run.run_id, gate.gate)
    ctx.run.update_meta(status="running", waiting=None)
    ctx.emit(GateDecided(gate=gate.gate, gen=gate.gen, decision=decided.type, by=decided.by, surface=decided.surface))
    return decided.response


def drive(ctx: RunContext, graph: Any, config: dict, graph_input: Optional[dict], detach: bool = False) -> str:
    """Run the graph to its end ("finished") or to a gate left waiting ("waiting")."""
    from langgraph.types import Command

    request = None if graph_input is not None else pending_request(graph, config)
    command: Any = graph_input
    while True:
        if request is None:
            for _ in graph.stream(command, config, stream_mode="updates"):
                pass
            request = pending_request(graph, config)
            if request is None:
                return "finished"
        gate = ctx.store.gate(ctx.run.run_id, request["gate"]["id"]) or ctx.store.open_gate(
            ctx.run.run_id, request, card.details(ctx, request), ctx.run.repo_root)
        answer = _wait(ctx, gate, detach)
        if answer is None:
            return "waiting"
        command, request = Command(resume=answer), None
