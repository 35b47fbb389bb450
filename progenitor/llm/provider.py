"""One request to a language model through litellm: the only module that imports it.

- **one request, no hidden ones**: litellm is called with ``num_retries=0`` (which also sets
  the OpenAI client's own retries to 0), so each call here is exactly one HTTP request. What is
  resent, and when, is decided by the session (``progenitor.llm.transport``), which counts and
  charges every request. litellm's own retry loop would resend a 400 as readily as a 429 and
  hide each request it makes, including timed-out ones a provider bills.
- **what went wrong, by who is at fault** (``Outcome.fault``): ``transient`` (429, 5xx, a lost
  connection, a timeout: worth resending, after ``retry_after`` when the provider said),
  ``refused`` (a 4xx about the request itself, a context too long: never resent), ``format``
  (the provider refused the ``response_format``: asked again without it), ``access`` (the key
  or the model: 401, 403, 404).
- **what it cost**: an answer at the usage it reports, priced by ``llm.prices`` (dollars per
  million tokens) or litellm's table; an aborted request (a timeout) at an estimate, marked so:
  its prompt's tokens (``prompt_tokens``) plus ``max_tokens``, the most a provider can bill.
- **keys**: read from the environment variable the spec names (or, without one, by litellm
  from the provider's usual variable); passed to litellm in memory only, and blanked out of
  every error message we keep.

litellm would fetch its price table from the network when imported; ``LITELLM_LOCAL_MODEL_COST_MAP``
makes it use the copy it ships with, and is set before the import.
"""

from __future__ import annotations

import email.utils
import logging
import os
import re
import time
from typing import Any, Literal, Optional

from pydantic import BaseModel

from progenitor.errors import LlmUnavailable
from progenitor.task.spec import Endpoint, Llm, Price

__all__ = ["Outcome", "estimate", "litellm", "missing_keys", "price_of", "prompt_tokens", "redact", "send",
           "supports_schema"]

_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)$", re.IGNORECASE)
_FORMAT_WORDS = ("response_format", "json_schema", "json_object", "response format", "structured output")


def litellm():
    """litellm, imported once, offline and quiet (its failures reach the user through ours)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm as _litellm

    _litellm.suppress_debug_info = True
    if not os.environ.get("LITELLM_LOG"):  # the user's own debugging switch wins
        for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    return _litellm


class Outcome(BaseModel):
    """What one request gave."""

    kind: Literal["ok", "error", "aborted"]
    fault: Optional[Literal["transient", "refused", "format", "access"]] = None
    text: str = ""
    finish_reason: str = ""
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    dollars: float = 0.0
    priced: bool = True
    estimated: bool = False
    seconds: float = 0.0
    status: Optional[int] = None
    error: str = ""
    retry_after: Optional[float] = None
    """Seconds the provider asked us to wait before the next request (``Retry-After``)."""


def _secrets(chain: list[Endpoint]) -> list[str]:
    named = {ep.api_key_env for ep in chain if ep.api_key_env}
    values = [v for k, v in os.environ.items() if (k in named or _SECRET_NAME.search(k)) and len(v) >= 8]
    return sorted(set(values), key=len, reverse=True)


def redact(text: str, chain: Optional[list[Endpoint]] = None) -> str:
    """``text`` with every key-like value of the environment blanked out."""
    for secret in _secrets(chain or []):
        text = text.replace(secret, "[key hidden]")
    return text


def missing_keys(ep: Endpoint) -> list[str]:
    """The variables ``ep``'s key would be read from that are not set (empty: nothing missing)."""
    if ep.api_key_env:
        return [] if os.environ.get(ep.api_key_env) else [ep.api_key_env]
    try:
        found = litellm().validate_environment(model=ep.model, api_base=ep.api_base)
    except Exception:  # noqa: BLE001 - a provider litellm cannot tell about: the call will say
        return []
    # Only keys: a base URL litellm would like (OLLAMA_API_BASE) has a default or is in llm.api_base.
    return [name for name in found.get("missing_keys", []) if re.search(r"KEY|TOKEN", name)]


def supports_schema(model: str) -> bool:
    """Does litellm's table say the model takes a JSON schema as ``response_format``?"""
    try:
        return bool(litellm().supports_response_schema(model=model))
    except Exception:  # noqa: BLE001 - unknown to litellm
        return False


def _kwargs(ep: Endpoint) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"model": ep.model}
    if ep.api_base:
        kwargs["api_base"] = ep.api_base
    if ep.api_key_env:
        key = os.environ.get(ep.api_key_env)
        if not key:
            raise LlmUnavailable(f"the environment variable {ep.api_key_env} (the key of {ep.model}) is not set")
        kwargs["api_key"] = key
    return kwargs


def _dollars(model: str, prompt: int, completion: int, prices: dict[str, Price], response: Any = None) -> tuple[float, bool]:
    price = prices.get(model)
    if price is not None:
        return prompt * price.input / 1e6 + completion * price.output / 1e6, True
    lib = litellm()
    try:
        if response is not None:
            return float(lib.completion_cost(completion_response=response, model=model)), True
        inp, out = lib.cost_per_token(model=model, prompt_tokens=prompt, completion_tokens=completion)
        return float(inp) + float(out), True
    except Exception:  # noqa: BLE001 - litellm raises for a model it has no price for
        return 0.0, False


def prompt_tokens(model: str, messages: list[dict]) -> int:
    """The tokens of a chat prompt as a provider counts them: the model's tokenizer (as litellm
    picks it) over each message's role and content, plus 3 per message and 3 for the reply
    (OpenAI's documented rule for its chat models; other providers count within a few tokens)."""
    lib = litellm()
    try:
        count = lambda text: len(lib.encode(model=model, text=text))  # noqa: E731
        return sum(3 + count(str(m.get("role", ""))) + count(str(m.get("content") or "")) for m in messages) + 3
    except Exception:  # noqa: BLE001 - no tokenizer for it: about four characters a token
        return sum(len(str(m.get("content") or "")) for m in messages) // 4


def estimate(ep: Endpoint, messages: list[dict], max_tokens: int, prices: dict[str, Price]) -> tuple[int, int, float, bool]:
    """What a request may be billed when its answer never arrived: (its prompt's tokens,
    ``max_tokens``, their dollars, priced): the most a provider can bill for it."""
    prompt = prompt_tokens(ep.model, messages)
    dollars, priced = _dollars(ep.model, prompt, max_tokens, prices)
    return prompt, max_tokens, dollars, priced


def send(ep: Endpoint, messages: list[dict], settings: Llm, *, max_tokens: int,
         response_format: Optional[dict] = None) -> Outcome:
    """Exactly one request; a provider's failure is an ``Outcome``, never an exception (a key
    variable that is not set is ``LlmUnavailable``: no request is made)."""
    lib = litellm()
    options: dict[str, Any] = {"timeout": settings.timeout, "num_retries": 0, "max_tokens": max_tokens,
                               "drop_params": True}
    if settings.temperature is not None:
        options["temperature"] = settings.temperature
    if response_format is not None:
        options["response_format"] = response_format
    endpoint = _kwargs(ep)  # a key unset since the run started: LlmUnavailable, and nothing is sent
    started = time.monotonic()
    try:
        response = lib.completion(messages=messages, **endpoint, **options)
    except Exception as exc:  # noqa: BLE001 - sorted by who is at fault below
        return _failure(lib, exc, ep, messages, settings, max_tokens, response_format, time.monotonic() - started)
    usage = getattr(response, "usage", None)
    prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
    completion = int(getattr(usage, "completion_tokens", 0) or 0)
    dollars, priced = _dollars(ep.model, prompt, completion, settings.prices, response)
    choice = response.choices[0]
    return Outcome(kind="ok", text=choice.message.content or "", finish_reason=str(choice.finish_reason or ""),
                   model=ep.model, prompt_tokens=prompt, completion_tokens=completion, dollars=dollars, priced=priced,
                   seconds=round(time.monotonic() - started, 3))


def _failure(lib: Any, exc: Exception, ep: Endpoint, messages: list[dict], settings: Llm, max_tokens: int,
             response_format: Optional[dict], seconds: float) -> Outcome:
    status = getattr(exc, "status_code", None)
    message = _message(exc, ep)
    base = {"model": ep.model, "seconds": round(seconds, 3), "status": status if isinstance(status, int) else None}
    if isinstance(exc, lib.Timeout):
        prompt, completion, dollars, priced = estimate(ep, messages, max_tokens, settings.prices)
        return Outcome(kind="aborted", fault="transient", prompt_tokens=prompt, completion_tokens=completion,
                       dollars=dollars, priced=priced, estimated=True, error=f"no answer within {settings.timeout:g} s",
                       **{**base, "status": None})
    if isinstance(exc, (lib.AuthenticationError, lib.PermissionDeniedError)):
        return Outcome(kind="error", fault="access", error=f"the key was refused: {message}", **base)
    if isinstance(exc, lib.NotFoundError):
        return Outcome(kind="error", fault="access", error=f"no such model or endpoint: {message}", **base)
    if isinstance(exc, lib.ContextWindowExceededError):
        return Outcome(kind="error", fault="refused", error=f"the prompt is longer than its context window: {message}",
                       **base)
    if isinstance(exc, (lib.BadRequestError, lib.UnprocessableEntityError)) or (
            isinstance(base["status"], int) and 400 <= base["status"] < 500 and base["status"] not in (408, 409, 429)):
        formatted = response_format is not None and any(w in message.lower() for w in _FORMAT_WORDS)
        return Outcome(kind="error", fault="format" if formatted else "refused", error=message, **base)
    # 429, 5xx, a lost connection, a malformed answer: worth another request.
    return Outcome(kind="error", fault="transient", error=message, retry_after=_retry_after(exc), **base)


def _message(exc: BaseException, ep: Endpoint) -> str:
    """litellm's message with its prefixes dropped, capped, with no key in it."""
    text = str(exc).strip() or type(exc).__name__
    text = re.sub(r"^(litellm\.\w+:\s*)+", "", text)
    text = re.sub(r"^(\w+Error:\s*)?(OpenAIException - |\w+Exception - )", "", text)
    return redact(text, [ep])[:2000]


def _retry_after(exc: BaseException) -> Optional[float]:
    """The provider's ``Retry-After`` (or ``retry-after-ms``), in seconds, if it gave one."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or getattr(exc, "litellm_response_headers", None) or {}
    try:
        if headers.get("retry-after-ms") is not None:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, AttributeError):
        return None


def price_of(model: str, prices: dict[str, Price]) -> tuple[Optional[float], Optional[float], str]:
    """(input, output) dollars per million tokens and where they come from, for ``doctor``."""
    if model in prices:
        return prices[model].input, prices[model].output, "llm.prices"
    lib = litellm()
    try:
        info = lib.get_model_info(model)
    except Exception:  # noqa: BLE001 - not in litellm's table
        return None, None, "unknown: counted as $0"
    per_m = lambda v: None if v is None else float(v) * 1e6  # noqa: E731
    return per_m(info.get("input_cost_per_token")), per_m(info.get("output_cost_per_token")), "litellm's price table"
