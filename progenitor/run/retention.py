"""What stays of candidates' outputs once they are scored: ``train.keep_outputs``, applied by the
promote node as each generation is decided and by ``progenitor gc`` afterwards.

A candidate's outputs are what its code left (up to the output cap each), brought back to the
run directory for the trusted scorer. Kept forever, a long run filled the disk with outputs
nobody reads again. ``champion`` keeps those of the baseline and of every promoted champion (a
revert puts an earlier champion back, early stopping reads the champion's progress curve, a
person may want to look at what won); ``all`` keeps everything; ``none`` keeps nothing once a
generation is decided. Removal goes through ``boundary.walk.remove_tree``: whatever shape the
candidate gave its outputs, and idempotent (a resumed promote removes nothing twice).
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Iterable, Literal, Optional

from pydantic import BaseModel

from progenitor.boundary.walk import remove_tree, walk
from progenitor.run.rundir import RunDir, read_json

__all__ = ["KEEP", "Collected", "Freed", "apply_retention", "champions_of"]

KEEP = ("champion", "all", "none")
Keep = Literal["champion", "all", "none"]
_CANDIDATE = re.compile(r"g(\d+)/c(\d+)(?:/seed\d+)?/out$")


class Freed(BaseModel):
    """What a retention pass removed."""

    outputs: int = 0
    """Candidates whose outputs were removed (their own, their repeats', or both)."""
    bytes: int = 0
    """Their apparent size."""


class Collected(BaseModel):
    """What ``progenitor gc`` removed."""

    keep: str
    """The rule applied: champion, all or none."""
    runs: list[str] = []
    """Runs it was applied to."""
    busy: list[str] = []
    """Runs left alone: going on now (their promote node applies the task's own rule)."""
    outputs: int = 0
    """Candidates whose outputs were removed."""
    bytes: int = 0
    job_dirs: int = 0
    """Job directories of drivers that were killed, removed from this machine."""


def _outputs(run: RunDir) -> Iterable[tuple[int, int, Path]]:
    """(gen, k, outputs directory) of every candidate (the baseline's too) that has one, and of
    each of its repeats with another seed (``g<gen>/c<k>/seed<N>/out``: scored already, kept
    or removed with the candidate's own)."""
    for path in [*run.path.glob("g*/c*/out"), *run.path.glob("g*/c*/seed*/out")]:
        match = _CANDIDATE.search(path.relative_to(run.path).as_posix())
        if match and path.is_dir():
            yield int(match.group(1)), int(match.group(2)), path


def _size(path: Path) -> int:
    return sum(e.st.st_size for e in walk(path, refused=[]) if not e.is_dir)


def apply_retention(run: RunDir, keep: Keep, champions: set[tuple[int, int]], upto_gen: Optional[int] = None
                    ) -> Freed:
    """Remove the outputs ``keep`` does not keep, of generations up to ``upto_gen`` (all when
    None); ``champions``: (gen, k) of the baseline and every promoted champion."""
    freed = Freed()
    if keep == "all":
        return freed
    removed: set[tuple[int, int]] = set()
    for gen, k, path in sorted(_outputs(run)):
        if upto_gen is not None and gen > upto_gen:
            continue
        if keep == "champion" and (gen, k) in champions:
            continue
        freed.bytes += _size(path)
        with contextlib.suppress(OSError):
            remove_tree(path)
            removed.add((gen, k))
    freed.outputs = len(removed)
    return freed


def champions_of(run: RunDir) -> set[tuple[int, int]]:
    """(gen, k) of the baseline and of every candidate that was ever promoted (a reverted one
    included: a later revert may put it back), from the run's records."""
    found = {(0, 0)}
    for path in run.records():
        record = read_json(path) or {}
        if (record.get("decision") or {}).get("verdict") in ("promoted", "reverted"):
            found.add((int(record["gen"]), int(record["k"])))
    return found
