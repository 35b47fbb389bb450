"""The banner after an action: a code in the address (``?done=decided&run=R&gate=G``), the
words made here from what the store holds. A crafted address can only make the page repeat
what is true (or show nothing): no text travels in it."""

from __future__ import annotations

import re
from typing import Any, Optional

__all__ = ["message", "url"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9._@+-]{0,62}$")


def url(path: str, code: str, **params: Any) -> str:
    from urllib.parse import urlencode

    return f"{path}?{urlencode({'done': code, **{k: v for k, v in params.items() if v is not None}})}"


def _decided(store: Any, query: Any) -> Optional[str]:
    run, gate = query.get("run", ""), query.get("gate", "")
    decided = store.decision(run, gate) if run and gate else None
    if decided is None:
        return None
    who = " and ".join(decided.approvers) if decided.type == "approve" and len(decided.approvers) > 1 else decided.by
    signed = ", signed" if decided.signature else ""
    return f"{gate} of run {run}: {decided.type} by {who} recorded{signed}"


def _approval(store: Any, query: Any) -> Optional[str]:
    run, gate = query.get("run", ""), query.get("gate", "")
    found = store.gate(run, gate) if run and gate else None
    if found is None:
        return None
    approvals = store.approvals(run, gate)
    if store.decision(run, gate) is not None:
        return _decided(store, query)
    names = ", ".join(a["by"] for a in approvals) or "nobody"
    left = found.approvals_needed - len(approvals)
    return (f"{gate} of run {run}: approved by {names} ({len(approvals)} of {found.approvals_needed}); "
            f"it waits for {left} more approver{'s' if left != 1 else ''}")


def _reverted(store: Any, query: Any) -> Optional[str]:
    run, gen = query.get("run", ""), query.get("gen", "")
    done = next((r for r in store.reverts(run) if str(r.gen) == gen), None) if run else None
    if done is None:
        return None
    return f"generation {done.gen} of run {run} reverted by {done.by}; champion back at {done.restored['sha'][:10]}"


def _account(verb: str):
    def say(store: Any, query: Any) -> Optional[str]:
        name = query.get("name", "")
        return f"account {name} {verb}" if _NAME.match(name) else None
    return say


CODES = {
    "decided": _decided, "approval": _approval, "reverted": _reverted, "removed": _account("removed"),
    "signed-in": lambda store, query: "signed in", "signed-out": lambda store, query: "signed out",
}


def message(store: Any, query: Any) -> Optional[str]:
    """The banner the query's ``done`` code asks for, from the store's own records; None if unknown."""
    say = CODES.get(query.get("done") or "")
    return say(store, query) if say else None
