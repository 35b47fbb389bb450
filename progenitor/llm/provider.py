"""One chat completion through litellm: the only module that imports it.

- **which model**: the role's endpoint, then ``llm.fallbacks``; litellm tries them in order
  (``fallbacks=``), each with its own retries (``num_retries``) and ``timeout``. We add no
  loop of our own. (litellm hands ``num_retries`` to the OpenAI client as its own retries
  too, then retries the call itself: a request that keeps failing is sent up to about
  ``2 x retries + 1`` times before the fallbacks are tried.)
- **what it cost**: ``litellm.completion_cost`` on the response, at the model's price in
  ``llm.prices`` when one is given (local models), else at litellm's own table; a model
  neither knows costs $0 and is reported as unpriced (the node warns once).
- **keys**: read from the environment variable the spec names (or, without one, by litellm
  from the provider's usual variable); passed to litellm in memory only, and blanked out of
  every error message we keep.
- **errors** by who is at fault: a request the provider refuses as malformed or too long is
  a ``ModelBehaviorError`` (that candidate fails); no model answering is ``LlmUnavailable``
  (the run stops, resumable).

litellm would fetch its price table from the network when imported; ``LITELLM_LOCAL_MODEL_COST_MAP``
makes it use the copy it ships with, and is set before the import.
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any, Optional

from pydantic import BaseModel

from progenitor.errors import LlmUnavailable, ModelBehaviorError
from progenitor.task.spec import Endpoint, Llm, Price

__all__ = ["Completion", "complete", "litellm", "price_of", "redact"]

_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)$", re.IGNORECASE)


def litellm():
    """litellm, imported once, offline and quiet (its failures reach the user through ours)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm as _litellm

    _litellm.suppress_debug_info = True
    if not os.environ.get("LITELLM_LOG"):  # the user's own debugging switch wins
        for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    return _litellm


class Completion(BaseModel):
    text: str
    model: str
    """The model that answered."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    dollars: float = 0.0
    priced: bool = True
    seconds: float = 0.0


def _secrets(chain: list[Endpoint]) -> list[str]:
    named = {ep.api_key_env for ep in chain if ep.api_key_env}
    values = [v for k, v in os.environ.items() if (k in named or _SECRET_NAME.search(k)) and len(v) >= 8]
    return sorted(set(values), key=len, reverse=True)


def redact(text: str, chain: Optional[list[Endpoint]] = None) -> str:
    """``text`` with every key-like value of the environment blanked out."""
    for secret in _secrets(chain or []):
        text = text.replace(secret, "[key hidden]")
    return text


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


def _answered_by(response: Any, chain: list[Endpoint]) -> Endpoint:
    """Which endpoint of the chain answered: litellm counts the fallbacks it attempted."""
    headers = (getattr(response, "_hidden_params", None) or {}).get("additional_headers") or {}
    try:
        index = int(headers.get("x-litellm-attempted-fallbacks") or 0)
    except (TypeError, ValueError):
        index = 0
    return chain[min(index, len(chain) - 1)]


def _cost(lib: Any, response: Any, model: str, prices: dict[str, Price]) -> tuple[float, bool]:
    price = prices.get(model)
    if price is not None:
        per_token = {"input_cost_per_token": price.input / 1e6, "output_cost_per_token": price.output / 1e6}
        return float(lib.completion_cost(completion_response=response, custom_cost_per_token=per_token)), True
    try:
        return float(lib.completion_cost(completion_response=response, model=model)), True
    except Exception:  # noqa: BLE001 - litellm raises for a model it has no price for
        return 0.0, False


def complete(chain: list[Endpoint], messages: list[dict], settings: Llm, json_reply: bool = False,
             max_tokens: Optional[int] = None) -> Completion:
    """One answer from the first endpoint of ``chain`` that gives one."""
    lib = litellm()
    first, fallbacks = _kwargs(chain[0]), [_kwargs(ep) for ep in chain[1:]]
    options: dict[str, Any] = {"timeout": settings.timeout, "num_retries": settings.retries,
                               "max_tokens": max_tokens or settings.max_tokens, "drop_params": True}
    if settings.temperature is not None:
        options["temperature"] = settings.temperature
    if json_reply and settings.json_mode:
        options["response_format"] = {"type": "json_object"}
    if fallbacks:
        options["fallbacks"] = fallbacks
    started = time.monotonic()
    try:
        response = lib.completion(messages=messages, **first, **options)
    except lib.BadRequestError as exc:  # a context window exceeded, a refused parameter, ...
        raise ModelBehaviorError(f"{chain[0].model} refused the request: {_short(exc, chain)}") from None
    except lib.AuthenticationError as exc:
        raise LlmUnavailable(f"{chain[0].model} refused the key (check {chain[0].api_key_env or 'the provider key variable'}): "
                             f"{_short(exc, chain)}") from None
    except Exception as exc:  # noqa: BLE001 - every model and fallback failed, after litellm's retries
        tried = ", ".join(ep.model for ep in chain)
        raise LlmUnavailable(f"no model answered ({tried}; {settings.retries} retries each): {_short(exc, chain)}") from None
    answered = _answered_by(response, chain)
    usage = getattr(response, "usage", None)
    dollars, priced = _cost(lib, response, answered.model, settings.prices)
    return Completion(
        text=response.choices[0].message.content or "", model=answered.model,
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        dollars=dollars, priced=priced, seconds=round(time.monotonic() - started, 3),
    )


def _short(exc: BaseException, chain: list[Endpoint]) -> str:
    """The first line of litellm's message, capped, with no key in it."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return redact(text, chain)[:300]


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
