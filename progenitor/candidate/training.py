"""What one training left: the record the trainer keeps for a candidate."""

from __future__ import annotations

from typing import Optional

from pydantic import BaseModel

__all__ = ["TrainRecord"]


class TrainRecord(BaseModel):
    """What one training left: kept in ``train.json`` the moment it ends, and in the candidate's record."""

    status: str
    """ok, failed, timeout, oom, disk or pruned."""
    reason: str = ""
    exit_code: Optional[int] = None
    duration: float = 0.0
    cpu_seconds: float = 0.0
    memory_peak: Optional[int] = None
    """Bytes: the most memory its sandbox held at once, as the kernel counted it (None: not known)."""
    backend: str = ""
    isolation: list[str] = []
    node: str = ""
    gpu_ids: list[str] = []
    pruned: Optional[dict] = None
    """Set when early stopping ended it: step, value, reference."""
    self_reported: dict[str, float] = {}
    """The ``metric: value`` lines the candidate printed about itself (compared, never trusted)."""
    log_tail: str = ""
    """The last lines it printed, each line and the whole capped."""
    outputs_truncated: bool = False
    out: str = ""
    """Its outputs, relative to the run directory (records hold no host paths)."""
    command: str = ""
    """The command it was trained with, placeholders unfilled: ``train.command``, with
    ``search_space.flags`` the values of its commit appended."""
