"""How a candidate is named: one type, built and parsed here and nowhere else.

``g<gen>/c<k>`` within a run (paths of the run directory, events, the CLI), ``<run>/g<gen>/c<k>``
as the key of its side effects (training jobs, the ledger, audit entries), and
``refs/progenitor/<run>/g<gen>/c<k>`` as its git ref. Generation 0, candidate 0 is the human baseline.
"""

from __future__ import annotations

import re
from typing import Optional

from pydantic import BaseModel, ConfigDict

__all__ = ["IDENTITY", "REF_ROOT", "base_ref", "champion_ref", "CandidateKey", "candidate_name", "generation_job", "generation_name", "generation_of"]

REF_ROOT = "refs/progenitor"

# Commits made by progenitor carry their own identity, so that a machine with no
# user.name configured (CI) still works and the lineage says who wrote what.
IDENTITY = {
    "GIT_AUTHOR_NAME": "progenitor",
    "GIT_AUTHOR_EMAIL": "progenitor@localhost",
    "GIT_COMMITTER_NAME": "progenitor",
    "GIT_COMMITTER_EMAIL": "progenitor@localhost",
}


def champion_ref(run: str) -> str:
    return f"{REF_ROOT}/{run}/champion"


def base_ref(run: str) -> str:
    return f"{REF_ROOT}/{run}/base"

_KEY = re.compile(r"^(?:(?P<run>[\w.-]+)/)?g(?P<gen>\d+)/c(?P<k>\d+)$")
_GEN = re.compile(r"(?:^|/)g(\d+)(?:/|$)")


def generation_name(gen: int) -> str:
    return f"g{gen}"


def candidate_name(gen: int, k: int) -> str:
    return f"{generation_name(gen)}/c{k}"


def generation_job(run: str, gen: int) -> str:
    """``<run>/g<gen>``: the key of a generation's own side effects (its architect's LLM calls)."""
    return f"{run}/{generation_name(gen)}"


def generation_of(key: str) -> Optional[int]:
    """The generation of ``<run>/g<gen>/c<k>`` or ``<run>/g<gen>`` (None: neither)."""
    match = _GEN.search(key)
    return int(match.group(1)) if match else None


class CandidateKey(BaseModel):
    """Which candidate: run, generation (1-based; 0 is the baseline) and index in it."""

    model_config = ConfigDict(frozen=True)

    run: str
    gen: int
    k: int

    @property
    def name(self) -> str:
        """``g<gen>/c<k>``: the candidate within its run (paths, events, the CLI)."""
        return candidate_name(self.gen, self.k)

    @property
    def job(self) -> str:
        """``<run>/g<gen>/c<k>``: the side-effect key of its training (executors, the ledger)."""
        return f"{self.run}/{self.name}"

    @property
    def ref(self) -> str:
        """The git ref its commit lives on."""
        return f"{REF_ROOT}/{self.run}/{self.name}"

    @classmethod
    def parse(cls, text: str, run: Optional[str] = None) -> "CandidateKey":
        """``g1/c0`` (with ``run``), ``r.../g1/c0`` or ``refs/progenitor/r.../g1/c0``."""
        text = text.removeprefix(REF_ROOT + "/")
        match = _KEY.match(text)
        if not match or not (match.group("run") or run):
            raise ValueError(f"{text!r} is not a candidate key like r20261128-1a2b/g1/c0")
        return cls(run=match.group("run") or run, gen=int(match.group("gen")), k=int(match.group("k")))

    def __str__(self) -> str:
        return self.job
