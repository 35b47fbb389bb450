"""The checks that run something: the trusted prepare command (in a scratch directory), the
visible patterns against what it wrote, and the scorer on a predictions file or on the
baseline's own outputs (one training, in the run's sandbox). Only ``progenitor check`` runs
these; a run does the same work in its prepare step."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Optional

from progenitor.checks.static import Check, ok, problem
from progenitor.errors import ProgenitorError, UserError
from progenitor.task.spec import TaskSpec


def check_prepare(spec: TaskSpec, trusted: Path, data: Path) -> Check:
    from progenitor.evaluation.scorer import run_prepare

    began = time.monotonic()
    try:
        run_prepare(spec, trusted, data)
    except UserError as exc:
        return problem("data.prepare run", str(exc))
    written = sorted(p.name for p in data.iterdir())
    return ok("data.prepare run", f"wrote {', '.join(written[:8]) or 'nothing'}{', ...' if len(written) > 8 else ''} "
                              f"in {time.monotonic() - began:.1f} s")


def check_visible(spec: TaskSpec, data: Path) -> list[Check]:
    from progenitor.evaluation.visible import label_files, visible_matches

    items, problems = visible_matches(spec, data)
    if problems:
        return [problem("data.visible", p) for p in problems]
    labels = label_files(spec)
    hidden = f"; {', '.join(labels)} (the scorer's labels) stays hidden" if labels else ""
    return [ok("data.visible", f"candidates see {', '.join(str(i.relative_to(data)) for i in items)}{hidden}")]


def check_scorer(spec: TaskSpec, trusted: Path, data: Path, scratch: Path, predictions: Optional[Path],
                 train: "BaselineTraining") -> Check:
    """The scorer on ``predictions`` when given, else on the baseline's outputs."""
    from progenitor.evaluation.scorer import score

    out = scratch / "out"
    out.mkdir()
    if predictions is not None:
        expect = spec.scorer.predictions
        shutil.copy2(predictions, out / (expect.file if expect is not None else predictions.name))
        on = f"on {predictions}"
    else:
        trouble, on = train.run(out)
        if trouble:
            return problem("scorer", trouble)
    result = score(spec, trusted, data, out)
    if not result.ok:
        return problem("scorer", f"{result.reason} ({on})")
    shown = ", ".join(f"{name} {value:.4g}" for name, value in result.metrics.items())
    return ok("scorer", f"printed {shown} ({on})")


class BaselineTraining:
    """One training of the base commit in the task's sandbox, as a run's generation 0 does."""

    def __init__(self, spec: TaskSpec, archive: bytes, visible: Path, backend: str, backend_options: dict):
        self.spec, self.archive, self.visible = spec, archive, visible
        self.backend, self.backend_options = backend, backend_options

    def run(self, out: Path) -> tuple[Optional[str], str]:
        """(why it failed or None, how it ran), with its outputs unpacked into ``out``."""
        from progenitor.compute.base import TrainJob, execute_job
        from progenitor.compute.outputs import unpack_outputs
        from progenitor.evaluation.scorer import last_lines
        from progenitor.sandbox.base import Limits

        res, train = self.spec.train.resources, self.spec.train
        job = TrainJob(
            key="check/g0/c0", command=train.command, tree_archive=self.archive, backend=self.backend,
            limits=Limits(wall_time=train.timeout, cpus=res.cpus, memory_bytes=res.memory_bytes, processes=res.processes),
            backend_options=self.backend_options, progress_file=train.progress, labels={"run": "check"},
        )
        try:
            result = execute_job(job, self.visible)
        except ProgenitorError as exc:
            return f"the baseline could not be trained: {exc}", ""
        box = result.sandbox
        how = f"on the baseline's outputs, trained in {box.duration:.1f} s in the {self.backend} sandbox"
        if not box.ok:
            return (f"the baseline failed to train ({box.reason}); train.command: {train.command}; "
                    f"{last_lines(box.stdout + chr(10) + box.stderr)}"), how
        try:
            unpack_outputs(result.outputs_archive, out)  # the outputs rules, as in a run
        except ProgenitorError as exc:
            return f"the baseline's outputs: {exc}", how
        return None, how


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="progenitor-check-"))
