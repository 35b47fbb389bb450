"""The offline coder: turns a proposal into file changes with no language model.

- config values (``proposal.params``) are written into the task's declared config file,
  YAML, JSON or TOML, keys dotted for nesting, comments kept (``config_files``);
- whole-file edits (``proposal.edits``) are written as given (scripted proposals, red-team
  cases, and architects that write code themselves).

It never fixes a crashed candidate: without a model there is nothing to reason with.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from progenitor.agents.base import AgentContext, CodeChange, Failure, FileEdit, Proposal
from progenitor.agents.config_files import get_dotted, load_config, set_values
from progenitor.errors import ModelBehaviorError, UserError
from progenitor.keys import candidate_name
from progenitor.spec import TaskSpec

__all__ = ["OfflineCoder", "commit_message", "read_params", "write_config"]


def read_params(tree: Path, spec: TaskSpec) -> dict[str, Any]:
    """Current values of the search-space keys in a tree's config file."""
    if spec.search_space is None:
        return {}
    path = tree / spec.search_space.file
    if not path.is_file() or path.is_symlink():
        return {}
    data = load_config(path)
    return {key: get_dotted(data, key) for key in spec.search_space.params}


def write_config(path: Path, values: dict[str, Any]) -> None:
    """Set existing dotted keys of a config file, keeping its comments."""
    path.write_text(set_values(path.read_text(encoding="utf-8"), path.name, values), encoding="utf-8")


def commit_message(proposal: Proposal) -> str:
    body = [f"Author: {proposal.author} architect"]
    if proposal.params:
        body.append("Values: " + json.dumps(proposal.params, sort_keys=True, default=str))
    if proposal.edits:
        body.append("Files: " + ", ".join(sorted(proposal.edits)))
    return f"{candidate_name(proposal.gen, proposal.k)}: {proposal.hypothesis}\n\n" + "\n".join(body) + "\n"


def _target(tree: Path, rel: str) -> Path:
    if any(part.lower() == ".git" for part in Path(rel).parts):
        # The worktree's .git file points at the model repo: an edit there could move the
        # user's branches. Git internals are never a candidate's to change.
        raise ModelBehaviorError(f"edit target {rel!r} is inside git's own files")
    target = (tree / rel).resolve()
    if tree not in target.parents:
        raise ModelBehaviorError(f"edit target {rel!r} lies outside the repository")
    return target


class OfflineCoder:
    """Writes a proposal's values and file edits into a tree."""

    name = "offline"

    def __init__(self, ctx: AgentContext):
        self.spec = ctx.spec

    def apply(self, proposal: Proposal, tree: Path) -> CodeChange:
        tree = tree.resolve()
        edits = []
        for rel, content in proposal.edits.items():
            target = _target(tree, rel)
            try:
                if content is None:
                    target.unlink(missing_ok=True)
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(content, encoding="utf-8")
            except OSError as exc:
                raise ModelBehaviorError(f"edit of {rel!r} failed: {exc.strerror or exc}") from None
            edits.append(FileEdit(path=rel, action="delete" if content is None else "write"))
        if proposal.params:
            space = self.spec.search_space
            if space is None:
                raise UserError("a proposal sets config values but progenitor.yaml has no search_space.file")
            write_config(_target(tree, space.file), proposal.params)
            edits.append(FileEdit(path=space.file))
        return CodeChange(message=commit_message(proposal), edits=edits)

    def fix(self, proposal: Proposal, tree: Path, failure: Failure) -> Optional[CodeChange]:
        return None
