"""The one LLM layer: every language-model call of progenitor goes through here, over litellm.

- ``provider``: the only module that imports litellm: exactly one request per call to it, its
  cost (litellm's price table, or ``llm.prices``; an estimate for an aborted one), its failure
  sorted by who is at fault, keys read from the environment and never written anywhere;
- ``transport``: one usable answer: requests numbered, written to the run's call cache
  (``cache``) before they leave and when they come back, resent only after a transient failure;
- ``session``: what an agent holds (``AgentContext.llm``): one conversation per call, with one
  budget of retries and repairs (a reply that does not parse goes back with the full error);
- ``calls``: the typed record of one request and the ``Account`` it is settled with as it ends
  (the run's charges the ledger then; ``CallLog`` keeps them, outside a run);
- ``replies``: JSON replies validated with pydantic; ``probe``: is a model there (one token).

Nothing here is imported by ``import progenitor``, and litellm only when a call is made.
"""

from progenitor.llm.calls import Account, CallLog, LlmCall, Refusal
from progenitor.llm.session import LlmSession

__all__ = ["Account", "CallLog", "LlmCall", "LlmSession", "Refusal"]
