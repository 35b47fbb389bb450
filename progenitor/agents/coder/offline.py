"""The offline coder: turns a proposal into file changes with no language model.

- config values (``proposal.params``) are written into the task's declared config file,
  YAML, JSON or TOML, keys dotted for nesting, comments kept (``config_files``);
- whole-file edits (``proposal.edits``) are written as given (scripted proposals, red-team
  cases, and architects that write code themselves).

Every read and write of the tree goes through ``progenitor.boundary.tree_files``: the tree is the
champion's, so a link in it is never followed and git's own files are never touched. It never
fixes a crashed candidate: without a model there is nothing to reason with.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from progenitor.agents.base import AgentContext, CodeChange, Failure, FileEdit
from progenitor.boundary import tree_files
from progenitor.candidate import Proposal
from progenitor.candidate.keys import candidate_name
from progenitor.errors import UserError
from progenitor.task.config_files import config_text, get_dotted, read_config, set_values
from progenitor.task.search_space import validate_proposal
from progenitor.task.spec import TaskSpec

__all__ = ["OfflineCoder", "commit_message", "read_params"]


def read_params(tree: Path, spec: TaskSpec) -> dict[str, Any]:
    """Current values of the search-space keys in a tree's config file."""
    if spec.search_space is None:
        return {}
    kind = tree_files.kind(tree, spec.search_space.file)
    if kind is None:
        return {}
    if kind == "link":  # in the base: the run refuses to start rather than fail every candidate
        raise UserError(f"search_space.file {spec.search_space.file!r} is a symbolic link; progenitor writes no "
                        "file through a link, so name the file it points to")
    data = read_config(tree, spec.search_space.file)
    return {key: get_dotted(data, key) for key in spec.search_space.params}


def commit_message(proposal: Proposal) -> str:
    body = [f"Author: {proposal.author} architect"]
    if proposal.params:
        body.append("Values: " + json.dumps(proposal.params, sort_keys=True, default=str))
    if proposal.edits:
        body.append("Files: " + ", ".join(sorted(proposal.edits)))
    return f"{candidate_name(proposal.gen, proposal.k)}: {proposal.hypothesis}\n\n" + "\n".join(body) + "\n"


class OfflineCoder:
    """Writes a proposal's values and file edits into a tree."""

    name = "offline"

    def __init__(self, ctx: AgentContext):
        self.spec = ctx.spec

    def apply(self, proposal: Proposal, tree: Path) -> CodeChange:
        """The proposal's whole-file edits, then its values set in the config file (its
        comments kept); the node writes them, through ``tree_files``."""
        edits = [FileEdit(path=rel, content=content) for rel, content in proposal.edits.items()]
        if proposal.params:
            space = self.spec.search_space
            if space is None:
                raise UserError("a proposal sets config values but progenitor.yaml has no search_space.file")
            # Read after the proposal's own edit of the config file, if it made one.
            written = next((e.content for e in reversed(edits) if e.path == space.file and e.content is not None), None)
            # A link here is the champion's, not this proposal's doing: an UnsafePathError
            # (a CandidateError) fails the candidate without asking the coder again.
            text = written if written is not None else config_text(tree, space.file)
            edits.append(FileEdit(path=space.file,
                                  content=set_values(text, space.file, validate_proposal(space, proposal.params))))
        return CodeChange(message=commit_message(proposal), edits=edits)

    def fix(self, proposal: Proposal, tree: Path, failure: Failure) -> Optional[CodeChange]:
        return None
