"""A proposal: one candidate as an architect proposes it, what to change and why."""

from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel

__all__ = ["Proposal"]


class Proposal(BaseModel):
    """One candidate as an architect proposes it: what to change and why."""

    gen: int
    """The generation it is proposed for."""
    k: int
    """Index of the candidate in its generation."""
    hypothesis: str
    """Why this change should help: goes into the commit message and the record."""
    params: dict[str, Any] = {}
    """Config values to write into ``search_space.file`` (dotted keys)."""
    edits: dict[str, Optional[str]] = {}
    """Whole-file edits: path -> new content (None deletes the file)."""
    author: str = "search"
    """The architect that proposed it (its registered name)."""
    plan: str = ""
    """How to change the code, for a coder that writes code (empty: only ``params`` and ``edits``)."""
    expected: str = ""
    """The effect expected on the objective (and on the guards)."""
    risk: str = ""
    """What could go wrong: a crash, a guard broken, a slower training."""
    edit_of: Optional[int] = None
    """The candidate of the same generation a person edited into this one (its ``k``), if any."""
