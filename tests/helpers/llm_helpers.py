"""Replies for the scripted LLM server, and the ``llm:`` section that points a task at it."""

from __future__ import annotations

import json

KEY_VAR = "TEST_LLM_KEY"
PRICE = {"input": 1000.0, "output": 1000.0}
"""$1000 per million tokens: a call of a few hundred tokens costs a fraction of a dollar, easy to cap."""


def llm_section(server, agents: str = "{architect: llm, coder: llm, reviewers: [llm]}", **extra) -> str:
    """The agents and an ``llm:`` section on ``server``. Calls go one at a time (``parallel: 1``)
    unless said otherwise: these tests script each model's replies as one queue, in order."""
    extra = {"parallel": 1, **extra}
    lines = [f"agents: {agents}", "llm:", "  model: openai/arch", "  coder: openai/coder", "  reviewer: openai/rev",
             f"  api_base: {server.url}", f"  api_key_env: {KEY_VAR}", "  retries: 0",
             "  prices: {" + ", ".join(f"openai/{m}: {json.dumps(PRICE)}" for m in ("arch", "coder", "rev")) + "}"]
    lines += [f"  {k}: {v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def proposals(*drafts: dict) -> str:
    return json.dumps({"proposals": [{"expected_effect": "lower error", "risk": "none", **d} for d in drafts]})


def draft(hypothesis: str, plan: str, **params) -> dict:
    return {"hypothesis": hypothesis, "plan": plan, "params": params}


def edit(path: str, search: str, replace: str) -> str:
    return f"{path}\n<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n"


def review(*findings: dict) -> str:
    return json.dumps({"findings": list(findings)})


NO_FINDINGS = review()


def lessons(*verdicts: str) -> str:
    """The architect's reply when it looks back at a generation (one lesson per candidate)."""
    return json.dumps({"lessons": [{"candidate": f"g1/c{k}", "verdict": v, "lesson": f"it was {v}", "next": "go on"}
                                   for k, v in enumerate(verdicts or ("confirmed",))]})
