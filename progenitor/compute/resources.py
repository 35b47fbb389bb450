"""What a candidate asks for against what there is to give, checked the same way by every
executor, before anything runs: a job that asks for a GPU this machine does not have would
wait forever in Ray's queue, or (without Ray) run on CPUs and book GPU-seconds never used."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Optional

__all__ = ["machine_resources", "shortfall"]


def machine_gpus() -> int:
    """GPUs this machine offers: ``CUDA_VISIBLE_DEVICES`` when set (as Ray reads it), else
    what ``nvidia-smi -L`` lists, else none."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def machine_resources(gpus: bool = True) -> dict[str, float]:
    """CPUs and GPUs of this machine, in Ray's names; ``gpus=False``: GPUs not looked for
    (``nvidia-smi`` takes a while), counted as none."""
    return {"CPU": float(os.cpu_count() or 1), "GPU": float(machine_gpus()) if gpus else 0.0}


def shortfall(cpus: float, gpus: float, have: dict[str, float], where: str) -> Optional[str]:
    """One sentence when one candidate asks for more CPUs or GPUs than ``have`` holds, else None.

    ``where`` names what was measured: "this machine", "the local Ray instance"."""
    for field, name, want in (("cpus", "CPU", cpus), ("gpus", "GPU", gpus)):
        got = have.get(name, 0.0)
        if want > got:
            plural = "s" if got != 1 else ""
            what = f"no {name}s" if got == 0 else f"{got:g} {name}{plural}"
            return (f"train.resources.{field} asks for {want:g} {name}{'s' if want != 1 else ''} per candidate but "
                    f"{where} has {what}; lower train.resources.{field}, or join a cluster that has them with "
                    f"--ray-address")
    return None
