"""A lesson: what one candidate taught, in a few words that the next architect reads.

Written after its generation is decided (by the LLM architect, or computed for the offline
search), kept in the candidate's record and so in its git note: it travels with the lineage,
and a later run on the same repository reads it (``ProposeContext.earlier``)."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Lesson", "Verdict"]

Verdict = Literal["confirmed", "refuted", "inconclusive", "failed", "not run"]


class Lesson(BaseModel):
    """Whether the candidate's hypothesis held against the commit it was built on, by how much,
    and what to try next."""

    model_config = ConfigDict(extra="ignore")

    verdict: Verdict
    """confirmed: better than its parent (above the noise, when the scorer gives per-example
    scores); refuted: worse; inconclusive: within the noise; failed: it did not score; not run:
    it never trained (rejected, edited, stopped)."""
    parent: str = ""
    """The node it was compared with (``g<gen>/c<k>``; ``g0/c0`` is the human baseline)."""
    gain: Optional[float] = None
    """Its objective minus its parent's, signed so that a positive number is an improvement."""
    text: str = Field("", max_length=600)
    """What happened, in a sentence or two."""
    next: str = Field("", max_length=400)
    """What to try next."""
    by: str = ""
    """Who wrote it: ``search`` (computed) or the architect's name."""
