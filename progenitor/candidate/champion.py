"""A champion: a commit that holds (or held) the title, with its trusted numbers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["Champion"]


class Champion(BaseModel):
    """A commit that holds (or held) the title, with its trusted numbers."""

    sha: str
    metrics: dict[str, float]
    gen: int = 0
    k: int = 0
    params: dict[str, Any] = {}
    test_metrics: dict[str, float] = {}
    """Its figures on the final test split (``test_<metric>``): never read by select or an architect."""
    repeats: list[dict[str, float]] = []
    """Each training's metrics when it was trained with several seeds (``objective.repeats``):
    ``metrics`` is their mean."""
