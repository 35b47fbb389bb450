"""What the safety review reads: the files a candidate changed, and its trees."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel

from progenitor.agents.safety.constitution import Constitution
from progenitor.spec import TaskSpec

__all__ = ["ChangedFile", "ReviewInput", "matches"]


class ChangedFile(BaseModel):
    path: str
    """Path in the candidate's tree (for a rename: the new path)."""
    status: Literal["A", "M", "D", "R", "T"]
    old_path: Optional[str] = None


class ReviewInput(BaseModel):
    """One candidate's change, as every reviewer reads it."""

    spec: TaskSpec
    """The base commit's spec."""
    base_tree: Path
    """Trusted export of the base commit."""
    candidate_tree: Path
    """The candidate's tree (read only: never executed by a reviewer)."""
    changed: list[ChangedFile]
    """What the candidate added, changed, renamed or deleted, against its parent."""
    constitution: Optional[Constitution] = None
    """The base's constitution, loaded once per run (None: loaded from ``base_tree``)."""
    gen: int = 0
    k: int = 0
    """Which candidate (an LLM reviewer's calls are keyed by it)."""
    hypothesis: str = ""
    """What the change claims to do (a change its hypothesis does not explain is suspicious)."""
    diff: str = ""
    """The unified diff against the champion, for reviewers that read one (the static checks read the trees)."""


def matches(path: str, patterns: list[str]) -> bool:
    """Does ``path`` fall under any protected pattern (a glob, a file, or a directory)?"""
    for pattern in patterns:
        pattern = pattern.rstrip("/")
        if fnmatch.fnmatch(path, pattern) or path == pattern or path.startswith(pattern + "/"):
            return True
    return False
