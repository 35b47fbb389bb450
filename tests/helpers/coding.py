"""The offline coder's change of a worktree, applied as the coder node applies it."""

from __future__ import annotations

from pathlib import Path

from progenitor.agents.base import AgentContext
from progenitor.agents.coder.offline import OfflineCoder
from progenitor.candidate import Proposal
from progenitor.workflows.nodes import written


def coder_edit(proposal: Proposal, spec):
    """An edit for ``Lineage.commit_candidate``: the offline coder's change, written by the node's helper."""
    coder = OfflineCoder(AgentContext(spec=spec, run_id="r1", workdir=Path(".")))
    return written(lambda tree: coder.apply(proposal, tree))
