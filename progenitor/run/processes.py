"""Whether a process is still there: a run's driver, a job dir's owner."""

from __future__ import annotations

import os
from typing import Optional

__all__ = ["alive"]


def alive(pid: Optional[int]) -> bool:
    """True while ``pid`` names a process of this machine (another user's included)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True
    except OSError:
        return False
    return True
