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
    from progenitor.evaluation.visible import hidden_files, label_files, visible_matches

    items, problems = visible_matches(spec, data)
    if problems:
        return [problem("data.visible", p) for p in problems]
    labels = label_files(spec)
    hidden = f"; {', '.join(labels)} (the scorer's labels) stay{'s' if len(labels) == 1 else ''} hidden" if labels else ""
    others = [name for name in hidden_files(spec, data) if name not in labels]
    if others:
        hidden += f", so do {', '.join(others[:5])}{', ...' if len(others) > 5 else ''}"
    return [ok("data.visible", f"candidates see {', '.join(str(i.relative_to(data)) for i in items)}{hidden} "
                               "(compared by contents too)")]


def check_scorer(spec: TaskSpec, trusted: Path, data: Path, scratch: Path, predictions: Optional[Path],
                 train: "BaselineTraining") -> list[Check]:
    """The scorer on ``predictions`` when given, else on the baseline's outputs; then the test
    split's scorer on the same outputs (a run scores the baseline on both before any candidate)."""
    from progenitor.evaluation.scorer import score

    out = scratch / "out"
    out.mkdir()
    if spec.evaluate == "model":
        return _check_model_scoring(spec, trusted, data, scratch, predictions, train)
    if predictions is not None:
        expect = spec.scorer.predictions
        shutil.copy2(predictions, out / (expect.file if expect is not None else predictions.name))
        on = f"on {predictions}"
    else:
        trouble, on = train.run(out)
        if trouble:
            return [problem("scorer", trouble), *_test_skipped(spec, "the baseline did not train")]
    result = score(spec, trusted, data, out, scratch / "scores")
    if not result.ok:
        return [problem("scorer", f"{result.reason} ({on})"), *_test_skipped(spec, "the scorer failed")]
    shown = ", ".join(f"{name} {value:.4g}" for name, value in result.metrics.items())
    checks = [ok("scorer", f"printed {shown} ({on})"), *check_per_example(spec, data, scratch / "scores")]
    if spec.scorer.test is not None:
        if predictions is not None:
            checks += _test_skipped(spec, "--predictions holds holdout predictions; without it, check trains the "
                                          "baseline once and scores the test split on its outputs")
        else:
            checks.append(check_test_scorer(spec, trusted, data, out, on))
    return checks


def check_test_scorer(spec: TaskSpec, trusted: Path, data: Path, out: Path, on: str) -> Check:
    """``scorer.test`` on the baseline's outputs: what the training wrote for the test split."""
    from progenitor.evaluation.scorer import score_test

    result = score_test(spec, trusted, data, out)
    if result is None:
        return ok("scorer.test", "no test split declared")
    if not result.ok:
        return problem("scorer.test", f"{result.reason} ({on}); the training must write the test split's "
                                      "predictions too (see 'The test split' in the README)")
    shown = ", ".join(f"{name} {value:.4g}" for name, value in result.metrics.items())
    return ok("scorer.test", f"printed {shown} ({on})")


def _test_skipped(spec: TaskSpec, why: str) -> list[Check]:
    if spec.scorer.test is None:
        return []
    return [Check(name="scorer.test", status="skipped", detail=f"not checked: {why}")]


def _check_model_scoring(spec: TaskSpec, trusted: Path, data: Path, scratch: Path, predictions: Optional[Path],
                         train: "BaselineTraining") -> list[Check]:
    """``evaluate: model``: the baseline trained, then scored in the scoring sandbox on the
    holdout and on the test split, as a run does before any candidate."""
    from progenitor.evaluation.model_eval import ScoringSandbox, score_model

    if predictions is not None:
        return [problem("scorer", "--predictions does not apply with 'evaluate: model': the scorer reads what the "
                                  "candidate's predict function returns in the scoring sandbox"),
                *_test_skipped(spec, "--predictions does not apply with 'evaluate: model'")]
    trouble, on = train.run(scratch / "out")
    if trouble:
        return [problem("scorer", trouble), *_test_skipped(spec, "the baseline did not train")]
    box = ScoringSandbox(backend=train.backend, options=train.backend_options, labels={"run": "check"})
    checks = []
    splits = [("holdout", "scorer")] + ([("test", "scorer.test")] if spec.scorer.test is not None else [])
    for split, name in splits:
        scores = scratch / f"{split}-scores"
        result = score_model(spec, split, trusted, data, scratch / "out", train.archive, scratch / "scored", box,
                             scores)
        if not result.ok:
            checks.append(problem(name, f"{result.reason} ({on}, scored in the scoring sandbox)"))
            continue
        shown = ", ".join(f"{metric} {value:.4g}" for metric, value in result.metrics.items())
        checks.append(ok(name, f"printed {shown} ({on}, scored in the scoring sandbox)"))
        if split == "holdout":
            checks += check_per_example(spec, data, scores)
    return checks


def check_per_example(spec: TaskSpec, data: Path, scores: Path) -> list[Check]:
    """A scorer given ``{scores}`` wrote per-example scores a run's paired test can read (one per
    holdout example): a run drops a bad file without a word, so this is where a user hears of it."""
    from progenitor.evaluation.honesty import holdout_size
    from progenitor.evaluation.significance import PER_EXAMPLE_FILE, load_per_example
    from progenitor.task.placeholders import placeholders_in

    if "scores" not in placeholders_in(spec.scorer.command):
        return []
    expected = holdout_size(spec, data)
    found, why = load_per_example(scores / PER_EXAMPLE_FILE, expected)
    if found is None:
        return [problem("scorer.scores", (why or f"the scorer was given {{scores}} but wrote no {PER_EXAMPLE_FILE} "
                                                  "there") + "; without it a promotion has no paired test")]
    level = spec.objective.significance
    test = f"a paired test at {level} before a promotion" if level is not None else "objective.significance is null"
    return [ok("scorer.scores", f"wrote {found.shape[0]} per-example scores, mean {found.mean():.4g} ({test})")]


class BaselineTraining:
    """One training of the base commit in the task's sandbox, as a run's generation 0 does."""

    def __init__(self, spec: TaskSpec, archive: bytes, visible: Path, backend: str, backend_options: dict,
                 command: Optional[str] = None):
        self.spec, self.archive, self.visible = spec, archive, visible
        self.backend, self.backend_options = backend, backend_options
        self.command = command or spec.train.command
        """What the run would train the baseline with (``search_space.flags`` appended)."""

    def run(self, out: Path) -> tuple[Optional[str], str]:
        """(why it failed or None, how it ran), with its outputs unpacked into ``out``."""
        from progenitor.compute.base import TrainJob, execute_job, unpack
        from progenitor.evaluation.scorer import last_lines
        from progenitor.sandbox.base import Limits

        res, train = self.spec.train.resources, self.spec.train
        job = TrainJob(
            key="check/g0/c0", command=self.command, tree_archive=self.archive, backend=self.backend,
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
            return (f"the baseline failed to train ({box.reason}); train.command: {self.command}; "
                    f"{last_lines(box.stdout + chr(10) + box.stderr)}"), how
        unpack(result.outputs_archive, out)
        return None, how


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="progenitor-check-"))
