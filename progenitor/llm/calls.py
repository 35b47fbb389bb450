"""What one LLM call cost, and the meter that carries calls from the agents to the nodes.

Agents stay pure: they never charge the ledger. Their session records every call on the
meter; the graph drains it after each node, charges the ledger (idempotently, by call id)
and emits the events. Before a call that would be paid, the session asks the meter's
``allowance``: the run refuses new calls once a stop was asked for or ``budget.dollars`` is
spent (a call already under way finishes, so the cap can be passed by that one call).
"""

from __future__ import annotations

import threading
from typing import Callable, Optional

from pydantic import BaseModel

__all__ = ["Allowance", "CallMeter", "LlmCall"]


class LlmCall(BaseModel):
    """One finished call (a replayed one too)."""

    id: str
    """``g<gen>/c<k>/<role>/<n>`` or ``g<gen>/architect/<n>``: unique within the run, the same on a replay."""
    role: str
    """architect, coder or reviewer."""
    gen: int
    k: Optional[int] = None
    """The candidate it was about (None: the architect's call for the whole generation)."""
    model: str
    """The model that answered (a fallback's name when the first model failed)."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    dollars: float = 0.0
    priced: bool = True
    """False when neither litellm nor ``llm.prices`` knows the model: it is counted as $0."""
    cached: bool = False
    """Replayed from the run's call cache (a resumed run): nothing was paid again."""
    seconds: float = 0.0


Allowance = Callable[[float], None]
"""Called with the dollars recorded but not yet charged; raises to refuse a new paid call."""


class CallMeter:
    """Collects calls until a node takes them; thread-safe."""

    def __init__(self, allowance: Optional[Allowance] = None):
        self.allowance = allowance
        self._calls: list[LlmCall] = []
        self._lock = threading.Lock()
        self.warned: set[str] = set()
        """Models already warned about (no price): one warning per model and session."""

    def check(self) -> None:
        """Before a paid call: raises ``BudgetExceeded`` or ``RunStopped`` when no call may start."""
        if self.allowance is not None:
            with self._lock:
                pending = sum(c.dollars for c in self._calls if not c.cached)
            self.allowance(pending)

    def record(self, call: LlmCall) -> None:
        with self._lock:
            self._calls.append(call)

    def take(self) -> list[LlmCall]:
        """Every call recorded since the last take."""
        with self._lock:
            calls, self._calls = self._calls, []
        return calls
