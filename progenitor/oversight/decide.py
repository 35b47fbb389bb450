"""Deciding at a gate, from any surface: the one function the CLI, the Python API and the web
page call (``progenitor.api.decide``).

It finds the gate the run waits at, turns the person's decision into the HITL response the
graph expects (``progenitor.oversight.hitl``), stores it (the store keeps one decision per gate: a second
caller gets ``AlreadyDecided``, naming the first) and appends it to the audit log with who,
when, what, the candidate commit, the hash of the payload shown and the comment. The run's
process, waiting at the gate, sees it and goes on; a detached run goes on at ``resume``.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any, Optional, Union

from pydantic import BaseModel

from progenitor.errors import AlreadyDecided, UserError
from progenitor.oversight import hitl
from progenitor.oversight.audit import audit_log
from progenitor.oversight.store import DecisionStore, Gate, Recorded
from progenitor.run.events import GateDecision
from progenitor.run.rundir import find_run, list_runs

__all__ = ["Pending", "actor", "decide", "default_person", "pending"]


class Pending(BaseModel):
    """A gate that waits for a person."""

    run: str
    repo: str
    gate: str
    kind: str
    gen: int
    description: str
    opened: str
    payload_sha256: str
    request: dict


def default_person() -> str:
    """Who decides from a shell: the OS user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def actor(by: Optional[str]) -> str:
    """``human:<name>`` of the person ``by`` names (default: the OS user), for the store, the
    records and the audit log: a decision, a revert and an adoption all name their person so."""
    person = (by or default_person()).strip()
    if not person:
        raise UserError("a decision needs the name of the person who takes it")
    return person if person.startswith("human:") else f"human:{person}"


def _pending(gate: Gate, repo: Path) -> Pending:
    return Pending(run=gate.run, repo=str(repo), gate=gate.gate, kind=gate.kind, gen=gate.gen,
                   description=gate.description, opened=gate.opened, payload_sha256=gate.payload_sha256,
                   request=gate.request)


def pending(run_id: Optional[str] = None, repo: Optional[Union[str, Path]] = None) -> list[Pending]:
    """What waits for a decision: one run's gates, or every run's of ``repo`` (default: here)."""
    if run_id is not None:
        run = find_run(run_id, repo)
        return [_pending(g, run.repo_root) for g in DecisionStore(run.repo_root).pending(run_id)]
    root = Path(repo) if repo else Path.cwd()
    known = {r.run_id for r in list_runs(root)}
    return [_pending(g, root) for g in DecisionStore(root).pending() if g.run in known]


def _gate(store: DecisionStore, run_id: str, gate: Optional[str]) -> Gate:
    if gate is not None:
        found = store.gate(run_id, gate)
        if found is None:
            raise UserError(f"run {run_id} has no gate {gate!r}; 'progenitor pending {run_id}' lists what waits")
        return found
    waiting = store.pending(run_id)
    if waiting:
        return waiting[0]
    opened = store.gates(run_id)
    if opened:
        last = opened[-1]
        first = store.decision(run_id, last.gate)
        raise AlreadyDecided(f"nothing waits in run {run_id}: its last gate {last.gate} was already decided: "
                             f"{first.type} by {first.by} at {first.decided} ({first.surface})")
    raise UserError(f"nothing waits for a decision in run {run_id}")


def decide(run_id: str, decision: str, *, by: Optional[str] = None, comment: str = "",
           edits: Optional[dict[str, dict[str, Any]]] = None, repo: Optional[Union[str, Path]] = None,
           gate: Optional[str] = None, seen: Optional[str] = None, surface: str = "api") -> Recorded:
    """Decide at the gate ``run_id`` waits at (or ``gate``): approve, reject, edit or
    request-changes. ``by``: the person (default: the OS user); ``edits``: candidate -> values
    for an edit (``{"c0": {"lr": 0.01}}``); ``seen``: the payload hash the person was shown, to
    refuse a decision about a payload that has changed since."""
    run = find_run(run_id, repo)
    store = DecisionStore(run.repo_root)
    found = _gate(store, run_id, gate)
    if seen is not None and seen != found.payload_sha256:
        raise UserError(f"{found.gate} of run {run_id} now shows another payload than the one decided on; look again")
    who = actor(by)
    if edits:
        from progenitor.lineage import Lineage

        spec = Lineage(run.repo_root).spec_at(run.meta["base"])
        edits = {k: hitl.coerce_params(spec, v) for k, v in edits.items()}
    response = hitl.build_response(found.request, decision, by=who, comment=comment, surface=surface, edits=edits)
    kind = {"respond": "request-changes"}.get(hitl.ALIASES.get(decision, decision), decision)
    recorded = store.record(run_id, found.gate, kind, response, who, comment, surface)
    actions = found.request["action_requests"]
    audit_log(run.repo_root).append(
        key=f"{run_id}/{found.gate}/decision", action=kind, actor=who,
        run=run_id, gen=found.gen, commit=actions[0]["args"].get("commit") if actions else None,
        payload=found.request, comment=comment, gate=found.gate, surface=surface,
        candidates=[a["args"]["candidate"] for a in actions], decisions=[d["type"] for d in response["decisions"]],
    )
    run.emit(GateDecision(gate=found.gate, gen=found.gen, decision=kind, by=who, surface=surface))
    return recorded
