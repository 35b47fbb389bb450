"""A scripted architect: proposes exactly the candidates a test (or a red-team case) gives.

Each generation's script is a list of proposals, each a dict with ``edits`` (path ->
new content, None to delete) and/or ``params`` (config values), and a ``hypothesis``.
Generations past the end of the script repeat the last one.
"""

from __future__ import annotations

from typing import Any, Callable

from progenitor.agents.base import Baseline, Observation, ProposeContext
from progenitor.candidate import Proposal


class ScriptedArchitect:
    name = "scripted"

    def __init__(self, generations: list[list[dict[str, Any]]]):
        self.generations = generations
        self.observed: list[tuple[Proposal, Observation]] = []
        self.baseline: Baseline | None = None

    def seed(self, baseline: Baseline) -> None:
        self.baseline = baseline

    def propose(self, ctx: ProposeContext) -> list[Proposal]:
        script = self.generations[min(ctx.gen - 1, len(self.generations) - 1)]
        return [
            Proposal(gen=ctx.gen, k=k, hypothesis=item.get("hypothesis", f"scripted change {k}"), params=item.get("params", {}),
                     edits=item.get("edits", {}), author="scripted")
            for k, item in enumerate(script)
        ]

    def observe(self, proposal: Proposal, observation: Observation) -> None:
        self.observed.append((proposal, observation))


def scripted(generations: list[list[dict[str, Any]]]) -> Callable[[Any], ScriptedArchitect]:
    """An architect factory for ``start_run(..., architect=scripted([...]))``."""
    architect = ScriptedArchitect(generations)
    return lambda ctx: architect
