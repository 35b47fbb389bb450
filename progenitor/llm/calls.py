"""What one request to a language model cost, and the account every request is settled with.

Agents stay pure: they never charge the ledger, and nothing they return carries spend. Each
request ends as one typed record (``LlmCall``: an answer, a 429, a timeout alike, so the count
of requests is the count of tries) handed to the session's ``Account`` the moment it ends; the
run's account (``workflows.llm_usage.RunAccount``) charges the ledger there and then, once per
request id, and tells it as an event. There is nothing to collect or drain after a node.

Before a paid request the session asks the account for a ``Refusal``: the run gives one once a
stop was asked for or ``budget.dollars`` is spent, and the session raises the LLM layer's own
error for it (``LlmStopAsked``, ``LlmBudgetSpent``), which the workflow turns into its stop or
a candidate's ``budget`` status at the node's edge. Requests already under way finish, so the
cap can be passed by those, at most ``llm.parallel``. ``CallLog`` is the account of a session
outside a run (doctor, tests, the Python API): it keeps the records, with an optional cap.
"""

from __future__ import annotations

import threading
from typing import Literal, Optional, Protocol

from pydantic import BaseModel

from progenitor.errors import LlmBudgetSpent, LlmRefused, LlmStopAsked

__all__ = ["Account", "CallLog", "LlmCall", "OUTCOMES", "Refusal"]

Outcome = Literal["ok", "error", "aborted", "killed"]
OUTCOMES = {
    "ok": "the model answered; billed at the usage it reported",
    "error": "the provider answered with an error (429, 5xx, 400, ...); nothing billed",
    "aborted": "no answer within llm.timeout; counted at an estimate, since a provider may bill it",
    "killed": "under way when the run's process died; counted at an estimate when the run resumed",
}
"""What became of a request, and how it is charged."""


class LlmCall(BaseModel):
    """One request (a replayed one too)."""

    id: str
    """``g<gen>/c<k>/<role>/<n>`` or ``g<gen>/architect/<n>``: unique within the run, the same on a replay."""
    role: str
    """architect, coder, reviewer (or preflight)."""
    gen: int
    k: Optional[int] = None
    """The candidate it was about (None: the architect's call for the whole generation)."""
    model: str
    """The model it was sent to."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    dollars: float = 0.0
    priced: bool = True
    """False when neither litellm nor ``llm.prices`` knows the model: it is counted as $0."""
    cached: bool = False
    """Replayed from the run's call cache (a resumed run): nothing was paid again."""
    seconds: float = 0.0
    outcome: Outcome = "ok"
    estimated: bool = False
    """Its tokens and dollars are an estimate (an aborted or killed request): its prompt's tokens
    (``provider.prompt_tokens``) plus ``max_tokens``, the most a provider can bill for it."""
    status: Optional[int] = None
    """The HTTP status of an error."""
    fault: Optional[Literal["transient", "refused", "format", "access"]] = None
    """Who was at fault for an error: see ``progenitor.llm.provider``."""
    retry_after: Optional[float] = None
    """Seconds the provider asked to wait before the next request."""
    finish_reason: str = ""
    error: str = ""
    """What went wrong, in full (keys blanked out)."""


class Refusal(BaseModel):
    """Why no new paid request may start now."""

    kind: Literal["stop", "budget"]
    reason: str

    def error(self) -> LlmRefused:
        return (LlmStopAsked if self.kind == "stop" else LlmBudgetSpent)(self.reason)


class Account(Protocol):
    """Where a session's requests are settled (thread-safe: calls of a generation run side by side)."""

    def refusal(self) -> Optional[Refusal]:
        """Asked before each paid request: why none may start now (None: it may)."""
        ...

    def record(self, call: LlmCall) -> None:
        """One request, the moment it ended (a replayed one too: same id, never charged twice)."""
        ...


class CallLog:
    """The account of a session outside a run: every record kept in order; with ``dollars``,
    a paid request is refused once the recorded ones (replays not counted) reach it."""

    def __init__(self, dollars: Optional[float] = None):
        self.dollars = dollars
        self.calls: list[LlmCall] = []
        self._lock = threading.Lock()

    def spent(self) -> float:
        with self._lock:
            return sum(c.dollars for c in self.calls if not c.cached)

    def refusal(self) -> Optional[Refusal]:
        spent = self.spent()
        if self.dollars is not None and spent >= self.dollars:
            return Refusal(kind="budget", reason=f"budget reached: {spent:.4g} of {self.dollars:g} LLM dollars spent")
        return None

    def record(self, call: LlmCall) -> None:
        with self._lock:
            self.calls.append(call)
