"""One usable answer to a conversation: each request numbered, written to the run's call cache,
settled with the session's account as it ends, and resent only when that can help.

- **transient** (429, 5xx, a timeout, a lost connection): resent to the same model after the
  provider's ``Retry-After`` (else 1, 2, 4 ... s), while the call's ``retries`` last; then
  each fallback model gets one request. A wait longer than ``MAX_WAIT`` is not waited for.
- **refused** (a 400, a context too long): never resent; the agent misbehaved
  (``ModelBehaviorError``: that candidate fails, or the generation's proposals).
- **format** (the provider refused the ``response_format``): asked again with the next weaker
  format (schema, then any JSON object, then the prompt alone), remembered per model.
- **access** (the key or the model was refused): ``LlmUnavailable``, the run stops, resumable.

Every request counts in ``Tries.requests``, so a failure can say how many it cost. A request
whose id and content match one in the cache is replayed from it, free and without waiting.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Optional

from pydantic import BaseModel

from progenitor.candidate.keys import candidate_name, generation_name
from progenitor.errors import LlmUnavailable, ModelBehaviorError
from progenitor.llm.cache import CallCache, replayed_text, request_hash
from progenitor.llm.calls import Account, LlmCall
from progenitor.task.spec import Endpoint, Llm

__all__ = ["Answer", "MAX_WAIT", "Transport", "Tries", "call_id"]

MAX_WAIT = 300.0
"""Longest ``Retry-After`` honoured (seconds); a provider asking for more is taken as not answering."""
BACKOFF = 1.0
"""First wait after a transient failure without ``Retry-After``; doubled each time, at most 30 s."""
FORMATS = ("schema", "object", "off")


def call_id(role: str, gen: int, k: Optional[int], n: int) -> str:
    return f"{generation_name(gen)}/{role}/{n}" if k is None else f"{candidate_name(gen, k)}/{role}/{n}"


@dataclass
class Tries:
    """One call's budget: transport retries and repairs, spent as they are used."""

    retries: int
    repairs: int
    requests: int = 0
    """Requests made so far (replayed ones included, a killed one not: it was not the model's doing)."""


class Answer(BaseModel):
    text: str
    finish_reason: str = ""
    model: str


class Transport:
    """Sends the requests of every call of a run session."""

    def __init__(self, settings: Llm, cache: Optional[CallCache], account: Account):
        self.settings = settings
        self.cache = cache
        self.account = account
        self._seq: dict[tuple, int] = {}
        self._format: dict[str, str] = {}
        self._lock = threading.Lock()

    def answer(self, role: str, gen: int, k: Optional[int], chain: list[Endpoint], messages: list[dict],
               schema: Optional[type[BaseModel]], tries: Tries) -> Answer:
        index, waits = 0, 0
        while True:
            ep = chain[index]
            fmt = self._response_format(ep.model, schema)
            call, text, replayed = self._request(role, gen, k, ep, messages, fmt)
            if call.outcome == "killed":
                continue  # our process died under it: not the model's failure, not a retry
            tries.requests += 1
            if call.outcome == "ok":
                return Answer(text=text, finish_reason=call.finish_reason, model=ep.model)
            fault = call.fault or "transient"
            if fault == "format" and fmt is not None:
                self._weaken(ep.model)
                continue
            if fault in ("refused", "format"):
                raise ModelBehaviorError(f"{ep.model} refused the request ({call.status or 'error'}), which is not "
                                         f"sent again: {call.error}")
            if fault == "access":
                raise LlmUnavailable(f"{ep.model}: {call.error} (check its key variable, "
                                     f"{ep.api_key_env or 'the provider usual one'}, and llm.api_base)")
            wait = call.retry_after if call.retry_after is not None else min(30.0, BACKOFF * 2 ** waits)
            if tries.retries > 0 and wait <= MAX_WAIT:
                tries.retries -= 1
                waits += 1
                if not replayed:
                    self._wait(wait)
                continue
            if index + 1 < len(chain):
                index += 1
                continue
            why = f"asked to wait {wait:.0f} s; " if wait > MAX_WAIT else ""
            raise LlmUnavailable(f"no model answered ({', '.join(e.model for e in chain)}; {self.settings.retries} "
                                 f"retries): {why}{call.error}")

    # -- one request ------------------------------------------------------------------------
    def _request(self, role: str, gen: int, k: Optional[int], ep: Endpoint, messages: list[dict],
                 fmt: Optional[dict]) -> tuple[LlmCall, str, bool]:
        """(the request's record, its text, replayed?): from the cache when it was made before."""
        from progenitor.llm import provider

        max_tokens = self.settings.max_tokens
        request = {"model": ep.model, "messages": messages, "response_format": fmt, "max_tokens": max_tokens}
        digest = request_hash(request)
        cid, entry = self._id(role, gen, k, digest)
        if entry is not None:
            return self._replay(entry)
        self._may_send()
        prompt, completion, dollars, priced = provider.estimate(ep, messages, max_tokens, self.settings.prices)
        base = {"id": cid, "role": role, "gen": gen, "k": k, "model": ep.model}
        if self.cache is not None:
            self.cache.sent(LlmCall(**base, prompt_tokens=prompt, completion_tokens=completion, dollars=dollars,
                                    priced=priced, outcome="aborted", estimated=True), request, digest)
        try:
            out = provider.send(ep, messages, self.settings, max_tokens=max_tokens, response_format=fmt)
        except LlmUnavailable:
            if self.cache is not None:  # it never left (a key unset since the run started): nothing to charge
                self.cache.forget(cid)
            raise
        call = LlmCall(**base, **out.model_dump(include={"prompt_tokens", "completion_tokens", "dollars", "priced",
                                                          "seconds", "estimated", "status", "finish_reason", "error",
                                                          "fault", "retry_after"}),
                       outcome=out.kind)
        if self.cache is not None:
            self.cache.done(call, request, digest, out.text)
        self.account.record(call)
        return call, out.text, False

    def _id(self, role: str, gen: int, k: Optional[int], digest: str) -> tuple[str, Optional[dict]]:
        """The next id of this candidate and role: one whose entry is this very request (a
        replay), else the first free one (an id is never reused: the ledger charged it)."""
        with self._lock:
            n = self._seq.get((role, gen, k), 0)
            entry = None
            while self.cache is not None:
                entry = self.cache.get(call_id(role, gen, k, n))
                if entry is None or entry.get("request_hash") == digest:
                    break
                n += 1
            self._seq[(role, gen, k)] = n + 1
        return call_id(role, gen, k, n), entry

    def _replay(self, entry: dict) -> tuple[LlmCall, str, bool]:
        call = LlmCall.model_validate(entry["call"])
        if entry.get("state") == "sent":
            # Left under way by a process that died: charged now (once: by id) at its estimate.
            call = call.model_copy(update={"outcome": "killed", "estimated": True,
                                           "error": "under way when the run's process died"})
            if self.cache is not None:
                self.cache.done(call, entry["request"], entry["request_hash"], "")
            self.account.record(call)
            return call, "", True
        call = call.model_copy(update={"cached": True})
        self.account.record(call)
        return call, replayed_text(entry), True

    # -- formats and waits ------------------------------------------------------------------
    def _response_format(self, model: str, schema: Optional[type[BaseModel]]) -> Optional[dict]:
        if schema is None:
            return None
        with self._lock:
            if model not in self._format:
                mode = self.settings.json_mode
                if mode == "auto":
                    from progenitor.llm.provider import supports_schema

                    mode = "schema" if supports_schema(model) else "object"
                self._format[model] = mode
            mode = self._format[model]
        if mode == "schema":
            return {"type": "json_schema",
                    "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema(), "strict": False}}
        return {"type": "json_object"} if mode == "object" else None

    def _weaken(self, model: str) -> None:
        with self._lock:
            mode = self._format.get(model, "off")
            self._format[model] = FORMATS[min(FORMATS.index(mode) + 1, len(FORMATS) - 1)]

    def _may_send(self) -> None:
        """Raises the LLM layer's refusal (``LlmStopAsked``, ``LlmBudgetSpent``) when the account gives one."""
        refusal = self.account.refusal()
        if refusal is not None:
            raise refusal.error()

    def _wait(self, seconds: float) -> None:
        """Sleep, but not through a stop request (checked every half second)."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(0.5, left))
            self._may_send()
