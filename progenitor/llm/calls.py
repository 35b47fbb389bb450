"""What one request to a language model cost, and the meter that carries requests from the
agents to the nodes.

Agents stay pure: they never charge the ledger. Their session records every request on the
meter (an answer, a 429, a timeout alike: the count of requests is the count of tries); the
workflow hears of each as it ends (its event), and drains the meter after each node into the
ledger (idempotently, by request id). Before a request that would be paid, the session asks the meter's ``allowance``:
the run refuses new requests once a stop was asked for or ``budget.dollars`` is spent (the
requests already under way finish, so the cap can be passed by those, at most ``llm.parallel``).
"""

from __future__ import annotations

import threading
from typing import Callable, Literal, Optional

from pydantic import BaseModel

__all__ = ["Allowance", "CallMeter", "LlmCall", "OUTCOMES"]

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


Allowance = Callable[[float], None]
"""Called with the dollars recorded but not yet charged; raises to refuse a new paid request."""


class CallMeter:
    """Collects requests until a node takes them; thread-safe. ``on_record`` hears of each request
    the moment it ends (the workflow shows it: a run retrying through 429s says so as it happens)."""

    def __init__(self, allowance: Optional[Allowance] = None, on_record: Optional[Callable[[LlmCall], None]] = None):
        self.allowance = allowance
        self.on_record = on_record
        self._calls: list[LlmCall] = []
        self._lock = threading.Lock()
        self.warned: set[str] = set()
        """Models already warned about (no price): one warning per model and session."""

    def check(self) -> None:
        """Before a paid request: raises ``BudgetExceeded`` or ``RunStopped`` when none may start."""
        if self.allowance is not None:
            with self._lock:
                pending = sum(c.dollars for c in self._calls if not c.cached)
            self.allowance(pending)

    def record(self, call: LlmCall) -> None:
        with self._lock:
            self._calls.append(call)
        if self.on_record is not None:
            self.on_record(call)

    def take(self) -> list[LlmCall]:
        """Every request recorded since the last take."""
        with self._lock:
            calls, self._calls = self._calls, []
        return calls
