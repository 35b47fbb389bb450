"""What an LLM agent may read of a tree: a map of its files, and the text of the editable ones.

Editable means: not protected (the spec's ``protected``, the spec itself, the constitution,
the research brief), not named by the trusted prepare or scorer command (the scorer's
internals stay unseen even where the task forgot to protect them), not documentation (unless
``agents.edit_docs``), a regular file (a link is never followed), text, and not too large.
Everything else is listed by name only. The holdout labels live in the run's data directory,
never in a tree, so no view of a tree can show them.

Documentation (``README*``, ``*.md``, ``*.rst``, ``docs/``) is context for a person, not for the
agents: it costs tokens in every prompt, a person's figures in it (a test-split score) should
not reach an architect, and a promoted candidate could plant instructions there for the
architects after it. The research brief is the person's channel to the architect. A dependency
manifest (``requirements.txt``, ...) is shown and editable, marked: a change to it escalates to
a person (``task.manifests``).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel

from progenitor.boundary import tree_files
from progenitor.boundary.walk import walk
from progenitor.errors import UnsafePathError
from progenitor.task.manifests import is_manifest
from progenitor.task.patterns import matches
from progenitor.task.spec import TaskSpec

__all__ = ["DOCS", "FILE_BYTES", "TOTAL_BYTES", "RepoFile", "TreeView", "is_documentation", "view"]

FILE_BYTES = 40_000
"""A file larger than this is listed, not shown."""
TOTAL_BYTES = 150_000
"""Most text shown of one tree in one prompt."""
DOCS = ("*.md", "*.markdown", "*.rst", "*.adoc", "readme", "readme.txt", "changelog", "changelog.txt", "license",
        "license.txt", "licence", "copying", "authors", "notice", "docs/*", "doc/*")
"""Documentation, by name (any case): listed for the agents, never shown nor edited, unless the task
says ``agents.edit_docs``."""
_SKIP_DIRS = {".git", "__pycache__", ".progenitor", ".venv", "venv", "node_modules", ".mypy_cache", ".pytest_cache"}


def is_documentation(path: str) -> bool:
    """Is ``path`` (in a tree) documentation? Code never is, wherever it lies."""
    lower = path.lower()
    if lower.endswith((".py", ".pyi", ".yaml", ".yml", ".json", ".toml", ".cfg", ".sh")):
        return False
    return matches(lower, list(DOCS)) or matches(lower.rsplit("/", 1)[-1], list(DOCS))


class RepoFile(BaseModel):
    path: str
    bytes: int
    kind: Literal["editable", "manifest", "docs", "protected", "link", "binary", "large"]
    """``manifest``: shown and editable, but a change to it escalates to a person; ``docs``: listed only."""


class TreeView(BaseModel):
    files: list[RepoFile]
    """Every file, with why it is not editable where it is not."""
    texts: dict[str, str]
    """The editable files shown, path -> text."""
    omitted: list[str] = []
    """Editable files not shown, and why."""

    def shown(self) -> list[dict]:
        kinds = {f.path: f.kind for f in self.files}
        return [{"path": path, "text": text, "manifest": kinds.get(path) == "manifest"} for path, text in self.texts.items()]


def hidden_names(spec: TaskSpec) -> set[str]:
    """Files the trusted commands name: the scorers' (holdout and test) and the data preparation's own code."""
    names = set()
    commands = [spec.scorer.command, spec.data.prepare, *([spec.scorer.test.command] if spec.scorer.test else [])]
    for command in commands:
        try:
            words = shlex.split(command)
        except ValueError:
            words = command.split()
        names.update(w for w in words if "{" not in w and not w.startswith("-"))
    return names


def _kind(tree: Path, rel: str, spec: TaskSpec, hidden: set[str]) -> tuple[str, Optional[str]]:
    """(what ``rel`` is to an agent, its text when it is editable): each file is read once."""
    try:
        if tree_files.kind(tree, rel) != "file":  # a link, or a file under a linked directory
            return "link", None
    except UnsafePathError:  # a name git would take for its own directory
        return "protected", None
    if matches(rel, spec.protected_paths) or rel in hidden:
        return "protected", None
    if not spec.agents.edit_docs and is_documentation(rel):
        return "docs", None
    try:
        data = tree_files.read_bytes(tree, rel, limit=FILE_BYTES)
    except UnsafePathError:
        return "large", None
    if b"\0" in data:
        return "binary", None
    try:
        return ("manifest" if is_manifest(rel) else "editable"), data.decode("utf-8")
    except UnicodeDecodeError:
        return "binary", None


def _walk(tree: Path) -> list[tuple[str, int]]:
    """(path, size) of every file and link, skipped directories not entered (``boundary.walk``:
    iterative, bounded, links never followed)."""
    # In a worktree .git is a file pointing at the repository (a host path): never shown.
    return sorted((e.rel, e.st.st_size) for e in walk(tree, refused=[], skip=_SKIP_DIRS)
                  if not e.is_dir and e.rel != ".git" and e.rel.rsplit("/", 1)[-1] not in _SKIP_DIRS)


def view(tree: Path, spec: TaskSpec, total_bytes: int = TOTAL_BYTES, changed: Optional[dict[str, str]] = None
         ) -> TreeView:
    """The tree as an agent may read it; ``changed``: files whose text a change already gave
    (the proposal's values in the config file) shown with that text."""
    tree = Path(tree)
    hidden = hidden_names(spec)
    files, texts, omitted, used = [], {}, [], 0
    for rel, size in _walk(tree):
        kind, text = _kind(tree, rel, spec, hidden)
        if text is not None and changed and rel in changed:
            text = changed[rel]
        size = len(text.encode()) if text is not None else size
        files.append(RepoFile(path=rel, bytes=size, kind=kind))
        if text is None:
            continue
        if used + size > total_bytes:
            omitted.append(f"{rel} (the prompt's size budget is spent)")
            continue
        texts[rel] = text
        used += size
    return TreeView(files=files, texts=texts, omitted=omitted)


def read_brief(tree: Path, spec: TaskSpec) -> str:
    """The research brief the spec names, if the tree has it (a protected file: the base's)."""
    if not spec.agents.brief:
        return ""
    try:  # no link followed, on the way either
        data = tree_files.read_bytes(tree, spec.agents.brief)
    except (UnsafePathError, OSError):
        return ""
    return data.decode("utf-8", errors="replace")[:FILE_BYTES]
