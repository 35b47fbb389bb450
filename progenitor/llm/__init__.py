"""The one LLM layer: every language-model call of progenitor goes through here, over litellm.

- ``provider``: the only module that imports litellm: a call with litellm's timeouts,
  retries and fallbacks, its cost (litellm's price table, or ``llm.prices``), errors sorted
  by who is at fault, keys read from the environment and never written anywhere;
- ``session``: what an agent holds (``AgentContext.llm``): calls keyed by run / generation /
  candidate / role / attempt, replayed from the run's call cache when they had finished, a
  reply that does not parse sent back with the error, a bounded number of times;
- ``calls``: the record of one call and the meter the nodes drain into the ledger;
- ``replies``: JSON replies validated with pydantic.

Nothing here is imported by ``import progenitor``, and litellm only when a call is made.
"""

from progenitor.llm.calls import CallMeter, LlmCall
from progenitor.llm.session import LlmSession

__all__ = ["CallMeter", "LlmCall", "LlmSession"]
