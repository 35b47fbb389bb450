"""A fake executor for pure-logic tests: no sandbox, no subprocess, no Ray.

Each job's tree is unpacked and a Python function plays its training: it reads the tree and
the visible data and writes outputs, in this process, in milliseconds. The result travels
the same way a real one does (an outputs archive, a ``SandboxResult``), so everything after
training (scoring, select, oversight, promote, notes) runs for real.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator, Optional

from pydantic import BaseModel

from progenitor.compute.base import EventCallback, JobResult, TrainJob, pack_dir, unpack
from progenitor.sandbox.base import SandboxResult

__all__ = ["FakeExecutor", "FakeRun", "toy_training"]


class FakeRun(BaseModel):
    """What a played training did."""

    status: str = "ok"
    stdout: str = ""
    reason: str = ""


Training = Callable[[Path, Optional[Path], Path], FakeRun]
"""(tree, visible data, outputs directory) -> what happened."""


def toy_training(tree: Path, data: Optional[Path], out: Path) -> FakeRun:
    """The toy task's train.py, played in-process: predictions ``w * x`` (on the test split's
    inputs too, when there is one), a progress line."""
    import json

    import numpy as np
    import yaml

    config = yaml.safe_load((tree / "config.yaml").read_text())
    w = float(config["w"])
    x = np.load(data / "holdout_inputs.npy")
    np.save(out / "predictions.npy", w * x)
    if (data / "test_inputs.npy").exists():
        np.save(out / "test_predictions.npy", w * np.load(data / "test_inputs.npy"))
    (out / "progress.jsonl").write_text(json.dumps({"step": 1, "error": abs(w - 3)}) + "\n")
    return FakeRun(stdout=f"error: {abs(w - 3) * 1.5:.6f}\n")


class FakeExecutor:
    """Plays every job with ``training``; ``runs`` lists the keys it played, in order."""

    name = "fake"

    def __init__(self, data_dir: Optional[Path], training: Training = toy_training, slots: int = 1,
                 **_options: object):
        self.data_dir = data_dir
        self.training = training
        self._slots = slots
        self.runs: list[str] = []

    def slots(self, cpus: float, gpus: float = 0.0) -> int:
        """One by default, so that a run's order of play (and so its search) is the same every time."""
        return self._slots

    def run(self, jobs: list[TrainJob], on_event: Optional[EventCallback] = None) -> Iterator[JobResult]:
        emit = on_event or (lambda kind, payload: None)
        for job in jobs:
            emit("train.start", {"key": job.key})
            yield self._play(job)
            emit("train.end", {"key": job.key})

    def _play(self, job: TrainJob) -> JobResult:
        base = Path(tempfile.mkdtemp(prefix="progenitor-fake-"))
        try:
            tree, out = base / "tree", base / "out"
            unpack(job.tree_archive, tree)
            out.mkdir()
            started = time.monotonic()
            played = self.training(tree, self.data_dir, out)
            self.runs.append(job.key)
            box = SandboxResult(status=played.status, exit_code=0 if played.status == "ok" else 1,
                                duration=time.monotonic() - started, stdout=played.stdout, reason=played.reason,
                                backend="fake")
            archive, cut = pack_dir(out, job.output_cap_bytes)
            return JobResult(key=job.key, sandbox=box, outputs_archive=archive, outputs_truncated=bool(cut),
                             outputs_note=cut, node="fake")
        finally:
            shutil.rmtree(base, ignore_errors=True)

    def cancel(self) -> None:
        pass

    def close(self) -> None:
        pass
