"""Does a configured model answer? One one-token request, where its key comes from, what the
model costs: what ``progenitor doctor DIR`` shows for each model of a task's ``llm:`` section,
and what a run asks of each before it prepares any data (its preflight)."""

from __future__ import annotations

from typing import Optional

from pydantic import BaseModel

from progenitor.errors import ProgenitorError
from progenitor.task.spec import Endpoint, Llm

__all__ = ["Probe", "price_words", "probe_model"]


class Probe(BaseModel):
    model: str
    ok: bool
    detail: str
    """One sentence: how long it took, where the key comes from, the price; or what went wrong."""
    outcome: Optional[dict] = None
    """The request's ``provider.Outcome`` (its tokens and dollars: a probe is paid too); None: never sent."""


def price_words(ep: Endpoint, settings: Llm) -> str:
    from progenitor.llm.provider import price_of

    inp, out, source = price_of(ep.model, settings.prices)
    if inp is None and out is None:
        return source
    return f"${inp or 0:g} / ${out or 0:g} per M tokens in/out ({source})"


def probe_model(ep: Endpoint, settings: Llm) -> Probe:
    """One request of one token, not resent, within at most 30 s."""
    from progenitor.llm import provider

    quick = settings.model_copy(update={"timeout": min(settings.timeout, 30.0), "temperature": None})
    missing = provider.missing_keys(ep)
    key = f"key from ${ep.api_key_env}" if ep.api_key_env else "key as litellm finds it for the provider"
    if missing:
        return Probe(model=ep.model, ok=False, detail=f"its key variable ${missing[0]} is not set")
    try:
        out = provider.send(ep, [{"role": "user", "content": "Reply with the word OK."}], quick, max_tokens=1)
    except ProgenitorError as exc:
        return Probe(model=ep.model, ok=False, detail=f"{exc} ({key})")
    if out.kind != "ok":
        status = f" ({out.status})" if out.status else ""
        return Probe(model=ep.model, ok=False, detail=f"did not answer{status}: {out.error} ({key})",
                     outcome=out.model_dump())
    return Probe(model=ep.model, ok=True, outcome=out.model_dump(),
                 detail=f"answered in {out.seconds:.1f} s; {key}; {price_words(ep, settings)}")
