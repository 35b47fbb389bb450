"""What an LLM agent holds: calls keyed by run / generation / candidate / role / attempt.

``ask`` sends a conversation and hands the reply to ``parse``; a reply ``parse`` rejects (a
``ValueError``: JSON that does not validate, an edit that does not apply) goes back to the
model with the error, up to ``tries`` replies in all, then the agent misbehaved
(``ModelBehaviorError``). Each call is numbered within its candidate and role; a call whose
id and request match a finished one in the run's cache is replayed from it, free: a
resumed run repeats no finished call. Every call, replayed or paid, is recorded on the
meter, which the nodes drain into the ledger.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable, Optional, TypeVar

from progenitor.candidate.keys import candidate_name, generation_name
from progenitor.errors import ModelBehaviorError, UserError
from progenitor.llm.cache import CallCache, request_hash
from progenitor.llm.calls import CallMeter, LlmCall
from progenitor.task.spec import Endpoint, Llm

__all__ = ["LlmSession", "call_id"]

T = TypeVar("T")


def call_id(role: str, gen: int, k: Optional[int], n: int) -> str:
    return f"{generation_name(gen)}/{role}/{n}" if k is None else f"{candidate_name(gen, k)}/{role}/{n}"


class LlmSession:
    """The run's models (``llm:``), its call cache and its meter."""

    def __init__(self, settings: Llm, cache_dir: Optional[Path] = None, meter: Optional[CallMeter] = None):
        self.settings = settings
        self.cache = CallCache(cache_dir) if cache_dir is not None else None
        self.meter = meter or CallMeter()
        self._seq: dict[tuple, int] = {}
        self._lock = threading.Lock()

    def chain(self, role: str) -> list[Endpoint]:
        chain = self.settings.chain(role)
        if not chain:
            raise UserError(f"the {role} calls a language model but llm: names none for it; set llm.model or llm.{role}")
        return chain

    def ask(self, role: str, gen: int, k: Optional[int], messages: list[dict], parse: Callable[[str], T], *,
            repair: Callable[[str], str], tries: Optional[int] = None, json_reply: bool = False) -> T:
        """The parsed reply; a rejected one is sent back as ``repair(error)``, ``tries`` replies at most."""
        tries = tries if tries is not None else 1 + self.settings.repairs
        conversation = list(messages)
        error = ""
        for _ in range(tries):
            text = self.complete(role, gen, k, conversation, json_reply=json_reply)
            try:
                return parse(text)
            except ValueError as exc:  # pydantic's ValidationError and json's errors are ValueErrors
                error = str(exc)
                conversation += [{"role": "assistant", "content": text}, {"role": "user", "content": repair(error)}]
        first = error.strip().splitlines()[0] if error.strip() else "no usable reply"
        raise ModelBehaviorError(f"the {role} model gave no usable reply in {tries} tries: {first}")

    def complete(self, role: str, gen: int, k: Optional[int], messages: list[dict], json_reply: bool = False) -> str:
        """One reply: from the cache when this call had finished, else from the model."""
        from progenitor.llm import provider

        chain = self.chain(role)
        with self._lock:
            n = self._seq.get((role, gen, k), 0)
            self._seq[(role, gen, k)] = n + 1
        cid = call_id(role, gen, k, n)
        request = {"models": [ep.model for ep in chain], "messages": messages, "json": json_reply}
        digest = request_hash(request)
        done = self.cache.get(cid, digest) if self.cache else None
        if done is not None:
            self.meter.record(LlmCall.model_validate({**done["call"], "cached": True}))
            return done["reply"]
        self.meter.check()
        answer = provider.complete(chain, messages, self.settings, json_reply=json_reply)
        call = LlmCall(id=cid, role=role, gen=gen, k=k, model=answer.model, prompt_tokens=answer.prompt_tokens,
                       completion_tokens=answer.completion_tokens, dollars=answer.dollars, priced=answer.priced,
                       seconds=answer.seconds)
        if self.cache:
            self.cache.put(cid, request, digest, answer.text, call.model_dump())
        self.meter.record(call)
        return answer.text
