"""Does a configured model answer? One one-token call, and what the model costs: what
``progenitor doctor DIR`` shows for each model of a task's ``llm:`` section."""

from __future__ import annotations

from progenitor.errors import ProgenitorError
from progenitor.task.spec import Endpoint, Llm

__all__ = ["price_words", "probe_model"]


def price_words(ep: Endpoint, settings: Llm) -> str:
    from progenitor.llm.provider import price_of

    inp, out, source = price_of(ep.model, settings.prices)
    if inp is None and out is None:
        return source
    return f"${inp or 0:g} / ${out or 0:g} per M tokens in/out ({source})"


def probe_model(ep: Endpoint, settings: Llm) -> tuple[bool, str]:
    """``(answered, one sentence)``: a one-token call with no retry, where its key comes from, its price."""
    from progenitor.llm import provider

    quick = settings.model_copy(update={"retries": 0, "timeout": min(settings.timeout, 30.0), "temperature": None})
    key = f"key from ${ep.api_key_env}" if ep.api_key_env else "key as litellm finds it for the provider"
    try:
        answer = provider.complete([ep], [{"role": "user", "content": "Reply with the word OK."}], quick, max_tokens=1)
    except ProgenitorError as exc:
        return False, f"{exc} ({key})"
    return True, f"answered in {answer.seconds:.1f} s; {key}; {price_words(ep, settings)}"
