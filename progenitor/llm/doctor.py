"""``progenitor doctor DIR``'s LLM lines: does each configured model answer a one-token call,
where its key comes from, what it costs, and what caps the spend. No ``llm:`` section: one
line saying the offline agents run, and no call is made."""

from __future__ import annotations

from pathlib import Path

from progenitor.doctor import Check
from progenitor.errors import ProgenitorError
from progenitor.spec import Endpoint, Llm, TaskSpec, load_spec

__all__ = ["llm_checks"]


def _price(ep: Endpoint, settings: Llm) -> str:
    from progenitor.llm.provider import price_of

    inp, out, source = price_of(ep.model, settings.prices)
    if inp is None and out is None:
        return source
    return f"${inp or 0:g} / ${out or 0:g} per M tokens in/out ({source})"


def _model(ep: Endpoint, settings: Llm) -> Check:
    from progenitor.llm import provider

    quick = settings.model_copy(update={"retries": 0, "timeout": min(settings.timeout, 30.0), "temperature": None})
    key = f"key from ${ep.api_key_env}" if ep.api_key_env else "key as litellm finds it for the provider"
    try:
        answer = provider.complete([ep], [{"role": "user", "content": "Reply with the word OK."}], quick, max_tokens=1)
    except ProgenitorError as exc:
        return Check(name=f"llm {ep.model}", ok=False, detail=f"{exc} ({key})")
    return Check(name=f"llm {ep.model}", ok=True,
                 detail=f"answered in {answer.seconds:.1f} s; {key}; {_price(ep, settings)}")


def _budget(spec: TaskSpec) -> Check:
    cap = spec.budget.dollars
    detail = f"budget.dollars {cap:g}: no LLM call starts once it is spent" if cap is not None else \
        "no budget.dollars: LLM spend is counted, not capped"
    return Check(name="llm budget", ok=True, detail=detail)


def llm_checks(repo: Path) -> list[Check]:
    try:
        spec = load_spec(repo)
    except ProgenitorError as exc:
        return [Check(name="llm", ok=False, detail=str(exc))]
    if spec.llm is None or not spec.llm.models():
        return [Check(name="llm", ok=True, detail="none configured: the offline agents run (no network, no key)")]
    return [*(_model(ep, spec.llm) for ep in spec.llm.models()), _budget(spec)]
