"""The mixed architect: the language model proposes code changes, the search tunes their knobs.

Each generation the LLM architect drafts K code changes and the search architect (Optuna
over ``search_space``) asks for K sets of values; candidate ``k`` is the model's change
``k`` with the search's values ``k`` on top (the search's values win where both set one).
The study is told every result, as it is when it searches alone, so it learns which
values suit the code the lineage is growing.
"""

from __future__ import annotations

from progenitor.agents.architect.llm import LlmArchitect
from progenitor.agents.architect.search import SearchArchitect
from progenitor.agents.base import AgentContext, Baseline, Observation, Outcome, ProposeContext
from progenitor.candidate import Lesson, Proposal

__all__ = ["MixedArchitect"]


def _values(params: dict) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(params.items()))


class MixedArchitect:
    name = "mixed"
    debugs = True
    """The model may be handed a candidate that crashed in training, to fix."""

    def __init__(self, ctx: AgentContext):
        self.llm = LlmArchitect(ctx)
        self.search = SearchArchitect(ctx)

    def seed(self, baseline: Baseline) -> None:
        self.search.seed(baseline)

    def propose(self, ctx: ProposeContext) -> list[Proposal]:
        drafts = self.llm.propose(ctx)
        knobs = self.search.propose(ctx.model_copy(update={"count": len(drafts)}))
        return [
            draft.model_copy(update={
                "params": {**draft.params, **tuned.params}, "author": self.name,
                "hypothesis": f"{draft.hypothesis} (knobs tuned by the search: {_values(tuned.params)})",
            })
            for draft, tuned in zip(drafts, knobs)
        ]

    def observe(self, proposal: Proposal, observation: Observation) -> None:
        self.search.observe(proposal, observation)

    def reflect(self, gen: int, outcomes: list[Outcome]) -> list[Lesson]:
        """The model writes the lessons (the numbers alone cannot say why a code change failed)."""
        return self.llm.reflect(gen, outcomes)
