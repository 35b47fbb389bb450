"""Deciding at a gate, from any surface: the one function the CLI, the Python API and the web
page call (``progenitor.api.decide``).

It finds the gate the run waits at, turns the person's decision into the HITL response the
graph expects (``progenitor.oversight.hitl``), checks the person's signature when they signed
(or when the task requires it), stores it (the store keeps one decision per gate: a second
caller gets ``AlreadyDecided``, naming the first; a gate that needs several approvers keeps
each approval until the last one it needs) and appends it to the audit log with who, when,
what, the candidate commit, the hash of the payload shown, the comment and the signature. The
run's process, waiting at the gate, sees it and goes on; a detached run goes on at ``resume``.

Who decides is an ``Identity`` a surface established (an account's token, a trusted proxy's
header, the OS user of a shell), or, from the Python API, the name its caller gives.
A run on another machine that shares a team store (PostgreSQL) is decided the same way: the
gate, the decision and the audit log are all in the store, and that machine's run goes on.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any, Optional, Union

from pydantic import BaseModel

from progenitor.errors import AlreadyDecided, UserError
from progenitor.oversight import hitl, signatures
from progenitor.oversight.accounts import Identity, require
from progenitor.oversight.store import DecisionStore, Gate, Recorded, run_store
from progenitor.run.events import GateApproval, GateDecision
from progenitor.run.rundir import RunDir, find_run, list_runs

__all__ = ["Pending", "actor", "decide", "default_person", "find_gate", "locate", "os_identity", "pending", "statement"]


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
    host: str = ""
    """The machine whose run waits (a team store holds several machines' gates)."""
    approvals: list[str] = []
    """Who approved so far, when the gate needs several approvers."""
    needed: int = 1


def default_person() -> str:
    """Who decides from a shell: the OS user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def os_identity() -> Identity:
    """A shell's person: the OS user, who may decide (they can write the repo's store anyway)."""
    return Identity(name=default_person(), role="admin", via="os")


def actor(by: Union[None, str, Identity]) -> str:
    """``human:<name>`` of the person ``by`` names (default: the OS user), for the store, the
    records and the audit log: a decision, a revert and an adoption all name their person so."""
    if isinstance(by, Identity):
        return by.actor
    person = (by or default_person()).strip()
    if not person or "\n" in person or "\r" in person:
        raise UserError("a decision needs the name of the person who takes it (one line)")
    return person if person.startswith("human:") else f"human:{person}"


def _pending(store: DecisionStore, gate: Gate, repo: Path) -> Pending:
    approvals = [a["by"] for a in store.approvals(gate.run, gate.gate)] if gate.approvals_needed > 1 else []
    return Pending(run=gate.run, repo=gate.repo or str(repo), gate=gate.gate, kind=gate.kind, gen=gate.gen,
                   description=gate.description, opened=gate.opened, payload_sha256=gate.payload_sha256,
                   request=gate.request, host=gate.host, approvals=approvals, needed=gate.approvals_needed)


def pending(run_id: Optional[str] = None, repo: Optional[Union[str, Path]] = None,
            store: Optional[str] = None) -> list[Pending]:
    """What waits for a decision: one run's gates, or every run's of ``repo`` (default: here);
    with a team ``store``, every machine's."""
    if run_id is not None:
        decisions, _ = locate(run_id, repo, store)
        return [_pending(decisions, g, decisions.repo_root) for g in decisions.pending(run_id)]
    root = Path(repo) if repo else Path.cwd()
    decisions = DecisionStore(root, store)
    known = None if decisions.shared else {r.run_id for r in list_runs(root)}
    return [_pending(decisions, g, root) for g in decisions.pending() if known is None or g.run in known]


def locate(run_id: str, repo: Optional[Union[str, Path]] = None,
           store: Optional[str] = None) -> tuple[DecisionStore, Optional[RunDir]]:
    """The store that holds ``run_id``'s gates, and the run's directory when it lives here (a
    team store's run may live on another machine: then only the store knows it)."""
    try:
        run = find_run(run_id, Path(repo) if repo else None)
    except UserError:
        if not store:
            raise
        shared = DecisionStore(Path(repo) if repo else Path.cwd(), store)
        if not shared.gates(run_id) and not any(r["run"] == run_id for r in shared.runs()):
            raise UserError(f"no run {run_id!r} here or in the store {shared.where}") from None
        return shared, None
    return run_store(run, store), run


def find_gate(store: DecisionStore, run_id: str, gate: Optional[str]) -> Gate:
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


def _signers(found: Gate, store: DecisionStore) -> Optional[signatures.AllowedSigners]:
    """The allowed signers the gate names (``oversight.allowed_signers``), read in the repo here."""
    name = found.request.get("gate", {}).get("allowed_signers")
    if not name:
        return None
    path = store.repo_root / name
    if not path.is_file():
        raise UserError(f"the task's allowed-signers file {name} is not in {store.repo_root}; it is needed to "
                        f"check a signed decision")
    return signatures.AllowedSigners.load(path)


def _signature(found: Gate, store: DecisionStore, signature: Optional[str], message: bytes, who: str) -> Optional[str]:
    """The signature checked (against the allowed signers when the task names them), or why not."""
    required = found.request.get("gate", {}).get("signatures") == "required"
    if not signature:
        if required:
            raise UserError(f"{found.gate} of run {found.run} needs a signed decision (oversight.require_signatures): "
                            f"sign its statement with your SSH key (progenitor approve ... --sign KEY)")
        return None
    signers = _signers(found, store)
    if signers is None:
        signatures.verify(signature, message)  # at least, a good signature of this very decision
    else:
        signatures.check(signature, message, who, signers)
    return signature.strip() + "\n"


def statement(found: Gate, kind: str, who: str, comment: str, edits: Optional[dict]) -> bytes:
    """What a person signs for this decision at this gate."""
    return signatures.statement(run=found.run, gate=found.gate, payload_sha256=found.payload_sha256, decision=kind,
                                by=who, comment=comment, edits=edits)


def decide(run_id: str, decision: str, *, by: Union[None, str, Identity] = None, comment: str = "",
           edits: Optional[dict[str, dict[str, Any]]] = None, repo: Optional[Union[str, Path]] = None,
           gate: Optional[str] = None, seen: Optional[str] = None, surface: str = "api",
           signature: Optional[str] = None, store: Optional[str] = None) -> Recorded:
    """Decide at the gate ``run_id`` waits at (or ``gate``): approve, reject, edit or
    request-changes. ``by``: who (an ``Identity``, whose role must allow deciding; a name from
    the API's caller; default the OS user); ``edits``: candidate -> values for an edit
    (``{"c0": {"lr": 0.01}}``); ``seen``: the payload hash the person was shown, to refuse a
    decision about a payload that has changed since; ``signature``: the person's SSH signature
    of ``statement(...)``; ``store``: a team store's URL (default: the run's own)."""
    decisions, run = locate(run_id, repo, store)
    found = find_gate(decisions, run_id, gate)
    if seen is not None and seen != found.payload_sha256:
        raise UserError(f"{found.gate} of run {run_id} now shows another payload than the one decided on; look again")
    if isinstance(by, Identity):
        require(by, "decide")
    who = actor(by)
    if edits:
        edits = {k: hitl.coerce_by_schema(found.request, v) for k, v in edits.items()}
    response = hitl.build_response(found.request, decision, by=who, comment=comment, surface=surface, edits=edits)
    kind = hitl.kind_of(decision)
    signed = _signature(found, decisions, signature, statement(found, kind, who, comment, edits), who)
    needed = found.approvals_needed
    recorded = decisions.record(run_id, found.gate, kind, response, who, comment, surface, signature=signed,
                                needed=needed)
    actions = found.request["action_requests"]
    decisions.audit_log(run.repo_root if run else None).append(
        key=f"{run_id}/{found.gate}/" + ("decision" if recorded.final else f"approval/{who}"),
        action=kind, actor=who, run=run_id, gen=found.gen,
        commit=actions[0]["args"].get("commit") if actions else None, payload_sha256=found.payload_sha256,
        comment=comment, gate=found.gate, surface=surface, candidates=[a["args"]["candidate"] for a in actions],
        decisions=[d["type"] for d in response["decisions"]], **({"edits": edits} if edits else {}),
        **({"signature": signed} if signed else {}),
        **({"signature_required": True} if found.request["gate"].get("signatures") == "required" else {}),
        **({"approvals": f"{len(recorded.approvers)} of {needed}", "approvers": recorded.approvers}
           if needed > 1 and kind == "approve" else {}),
    )
    if run is not None:
        if recorded.final:
            run.emit(GateDecision(gate=found.gate, gen=found.gen, decision=kind, by=who, surface=surface))
        else:
            run.emit(GateApproval(gate=found.gate, gen=found.gen, by=who, surface=surface,
                                  approvals=len(recorded.approvers), needed=needed))
    return recorded
