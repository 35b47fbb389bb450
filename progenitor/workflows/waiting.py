"""Driving a run across its gates: stream the graph until it ends or interrupts; at a gate,
open it in the decision store, say the run waits and for what, and wait for a decision made
anywhere (this process, another shell, the web page), then resume the graph with it.

Waiting ends with a decision, or without one when the caller detached (``run --detach``) or
a stop was asked for (Ctrl-C, ``progenitor stop``): the run then stays ``waiting``, and a
decision followed by ``progenitor resume`` (or a run process still waiting) carries it on.
"""

from __future__ import annotations

import time
from typing import Any, Optional

from progenitor.oversight.store import DecisionStore, Gate
from progenitor.run.events import GateDecided, GateWaiting
from progenitor.run.rundir import now_iso
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


def _wait(ctx: RunContext, gate: Gate, detach: bool) -> Optional[dict]:
    """The decision's response once there is one; None when leaving the run waiting."""
    store = DecisionStore(ctx.run.repo_root)
    decided = store.decision(ctx.run.run_id, gate.gate)
    if decided is None:
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
        gate = DecisionStore(ctx.run.repo_root).open_gate(ctx.run.run_id, request)
        answer = _wait(ctx, gate, detach)
        if answer is None:
            return "waiting"
        command, request = Command(resume=answer), None
