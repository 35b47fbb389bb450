"""The LLM coder: a language model turns a proposal's plan into search/replace edits of the
candidate's worktree, and repairs a candidate that crashed in training.

- A proposal's config values and whole-file edits are written as the offline coder writes
  them; a proposal with a plan then goes to the model with the tree's editable files (shared
  by the generation's candidates, first in the prompt) and then the proposal.
- Edits are applied all at once or not at all; one that does not apply goes back to the
  model with the exact error, in the same conversation, ``llm.edit_attempts`` replies in all,
  then the proposal fails (the node does not ask again).
- ``fix`` shows the model the crash (status, reason, log tail) and the crashed tree; the node
  commits the fix as a new candidate whose parent is the crashed commit. ``NOFIX``: none.
- The commit message carries the hypothesis, the plan, the expected effect and the risk.
Pure: each request is settled with the session's account as it ends; the node commits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from progenitor.agents import prompts
from progenitor.agents.base import AgentContext, CodeChange, Failure, FileEdit
from progenitor.agents.coder import edit_blocks
from progenitor.agents.coder.offline import OfflineCoder, commit_message
from progenitor.agents.repo_view import view
from progenitor.candidate import Proposal
from progenitor.candidate.keys import candidate_name

__all__ = ["LlmCoder"]

NOFIX = "NOFIX"


def _message(proposal: Proposal, files: list[str], failure: Optional[Failure] = None) -> str:
    lines = [commit_message(proposal).rstrip("\n"), "Coder: llm"]
    for label, text in (("Plan", proposal.plan), ("Expected", proposal.expected), ("Risk", proposal.risk)):
        if text:
            lines.append(f"{label}: {text}")
    if failure is not None:
        lines.append(f"Fixes: {failure.status}: {failure.reason}")
    if files:
        lines.append("Edited: " + ", ".join(files))
    return "\n".join(lines) + "\n"


class LlmCoder:
    name = "llm"

    def __init__(self, ctx: AgentContext):
        self.spec = ctx.spec
        self.llm = ctx.require_llm("llm coder")
        self.offline = OfflineCoder(ctx)

    def apply(self, proposal: Proposal, tree: Path) -> CodeChange:
        values = self.offline.apply(proposal, tree).edits if (proposal.params or proposal.edits) else []
        if not proposal.plan:
            return CodeChange(message=commit_message(proposal), edits=values)
        # The model reads the tree as the values leave it, and its edits apply on top of them.
        start = {e.path: e.content for e in values if e.content is not None}
        files = self._edit(proposal, tree, "apply", None, start) or {}
        edited = {p: text for p, text in files.items() if start.get(p) != text}
        return CodeChange(message=_message(proposal, sorted(edited)),
                          edits=[*values, *[FileEdit(path=p, content=text) for p, text in edited.items()]])

    def fix(self, proposal: Proposal, tree: Path, failure: Failure) -> Optional[CodeChange]:
        files = self._edit(proposal, tree, "fix", failure)
        if not files:
            return None
        return CodeChange(message=_message(proposal, sorted(files), failure),
                          edits=[FileEdit(path=p, content=text) for p, text in files.items()])

    def _edit(self, proposal: Proposal, tree: Path, part: str, failure: Optional[Failure],
              start: Optional[dict[str, str]] = None) -> Optional[dict[str, str]]:
        """Ask for edits until they apply (or ``NOFIX`` for a fix): path -> new text."""
        shown = view(tree, self.spec, changed=start)
        conversation = prompts.messages(
            "coder", part, key=candidate_name(proposal.gen, proposal.k), proposal=proposal.model_dump(), files=shown.shown(),
            protected=self.spec.protected_paths, failure=failure.model_dump() if failure else None)

        def parse(text: str) -> Optional[dict[str, str]]:
            if failure is not None and text.strip().strip("`").upper() == NOFIX:
                return None
            return edit_blocks.plan(tree, edit_blocks.parse_blocks(text), self.spec, start)

        files = self.llm.ask("coder", proposal.gen, proposal.k, conversation, parse,
                             tries=self.llm.settings.edit_attempts,
                             repair=lambda error: prompts.render("coder", "repair", error=error))
        return files
