"""The command line and the environment a sandboxed command gets, the same in every backend
but for the paths (each backend fills in the paths as its command sees them)."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Optional

from progenitor.sandbox.base import SandboxSpec
from progenitor.task.placeholders import fill

__all__ = ["SYSTEM_PATH", "THREAD_VARS", "build_env", "fill_template"]

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "TORCH_NUM_THREADS")
"""Thread-pool sizes set from ``limits.cpus``, so that a 1-CPU candidate does not start 64 threads."""

SYSTEM_PATH = ("/usr/local/bin", "/usr/bin", "/bin")
"""The system part of the sandbox's PATH."""


def fill_template(template: str, tree: Path, out: Path, data: Optional[Path]) -> str:
    """Put the paths, as the sandboxed command sees them, into the command (see
    ``progenitor.task.placeholders``: shell-quoted; other braces, as in awk or ``${VAR}``, are kept)."""
    return fill(template, {"tree": tree, "out": out, "data": data}, "the sandboxed command")


def build_env(spec: SandboxSpec, home: str) -> dict[str, str]:
    """The command's whole environment: never the host's (no API key may leak in)."""
    threads = str(max(1, math.floor(spec.limits.cpus)))
    path = os.pathsep.join(dict.fromkeys([os.path.dirname(sys.executable), *SYSTEM_PATH]))
    env = {
        "PATH": path, "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
        # A fresh uid has no passwd entry: getpass.getuser() and friends read these first.
        "USER": "sandbox", "LOGNAME": "sandbox",
        "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
        "CUDA_VISIBLE_DEVICES": ",".join(spec.limits.gpus),
    }
    env.update({var: threads for var in THREAD_VARS})
    env.update(spec.env)
    return env
