"""What an LLM agent holds: one conversation per call, with one budget of tries.

``ask`` sends a conversation and hands the reply to ``parse``. Three things can go wrong, and
each has its own part of the call's budget, spent once (nothing above the session asks again):

- a **request** fails transiently (429, 5xx, a timeout): the transport resends it, at most
  ``llm.retries`` times per call (``progenitor.llm.transport``); a refused request is never resent;
- the **reply** does not parse (``parse`` raises ``ValueError``: JSON that does not validate, an
  edit that does not apply): the same conversation goes on with the model's reply and the full
  error (``repair(error)``), at most ``llm.repairs`` times (the coder: ``edit_attempts - 1``);
- the reply was **cut** at ``max_tokens`` (``finish_reason: length``): the model is asked to
  continue where it stopped, and the parts are joined before parsing (each continuation spends
  a repair). It is never sent back as malformed JSON.

Then the agent misbehaved: ``ModelBehaviorError`` with the full error and the number of
requests it cost. Structured replies ask for their JSON schema through ``response_format``
where the provider has it (``llm.json_mode``). Every request, replayed or paid, is settled with the session's account as it ends.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, TypeVar

from pydantic import BaseModel

from progenitor.errors import ModelBehaviorError, UserError
from progenitor.llm.cache import CallCache
from progenitor.llm.calls import Account, CallLog
from progenitor.llm.transport import Transport, Tries, call_id
from progenitor.task.spec import Endpoint, Llm

__all__ = ["CONTINUE", "LlmSession", "call_id"]

T = TypeVar("T")

CONTINUE = ("Your reply was cut off at the length limit. Continue exactly where it stopped, with no "
            "repetition and no preamble: your text will be joined to what you wrote.")


class LlmSession:
    """The run's models (``llm:``), its call cache and the account its requests are settled with
    (default: a ``CallLog`` that keeps them)."""

    def __init__(self, settings: Llm, cache_dir: Optional[Path] = None, account: Optional[Account] = None):
        self.settings = settings
        self.cache = CallCache(cache_dir) if cache_dir is not None else None
        self.account = account if account is not None else CallLog()
        self.transport = Transport(settings, self.cache, self.account)

    def chain(self, role: str) -> list[Endpoint]:
        chain = self.settings.chain(role)
        if not chain:
            raise UserError(f"the {role} calls a language model but llm: names none for it; set llm.model or llm.{role}")
        return chain

    def ask(self, role: str, gen: int, k: Optional[int], messages: list[dict], parse: Callable[[str], T], *,
            repair: Callable[[str], str], tries: Optional[int] = None, schema: Optional[type[BaseModel]] = None) -> T:
        """The parsed reply; ``tries``: replies the model may give (default ``1 + llm.repairs``)."""
        chain = self.chain(role)
        budget = Tries(retries=self.settings.retries, repairs=(tries - 1) if tries is not None else self.settings.repairs)
        conversation = list(messages)
        while True:
            text = self._whole(role, gen, k, chain, conversation, schema, budget)
            try:
                return parse(text)
            except ValueError as exc:  # pydantic's ValidationError and json's errors are ValueErrors
                error = str(exc).strip() or type(exc).__name__
            if budget.repairs <= 0:
                raise ModelBehaviorError(f"the {role} model gave no usable reply in {_requests(budget)}: {error}")
            budget.repairs -= 1
            conversation += [{"role": "assistant", "content": text}, {"role": "user", "content": repair(error)}]

    def _whole(self, role: str, gen: int, k: Optional[int], chain: list[Endpoint], conversation: list[dict],
               schema: Optional[type[BaseModel]], budget: Tries) -> str:
        """One reply, its parts joined when it was cut at ``max_tokens`` and continued."""
        parts: list[str] = []
        while True:
            turn = conversation if not parts else [*conversation, {"role": "assistant", "content": "".join(parts)},
                                                   {"role": "user", "content": CONTINUE}]
            # A continuation is not a whole JSON object: it goes without the schema.
            answer = self.transport.answer(role, gen, k, chain, turn, None if parts else schema, budget)
            parts.append(answer.text)
            if answer.finish_reason != "length":
                return "".join(parts)
            if budget.repairs <= 0:
                raise ModelBehaviorError(
                    f"the {role} model's reply was cut at llm.max_tokens ({self.settings.max_tokens} tokens) "
                    f"{len(parts)} time(s), in {_requests(budget)}; raise llm.max_tokens (or llm.repairs, "
                    "to let it continue further)")
            budget.repairs -= 1


def _requests(budget: Tries) -> str:
    return f"{budget.requests} request{'s' if budget.requests != 1 else ''}"
