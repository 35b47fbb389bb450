"""The trusted side of the sealed evaluation: data preparation and scoring.

Both run code taken from the run's *base* commit (exported to ``trusted/``), never from a
candidate's tree, on the driver, next to the holdout labels. A candidate only ever sees
``visible/``: copies of the files its task declares visible.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

from pydantic import BaseModel

from progenitor.boundary.arrays import chunks, read_array
from progenitor.boundary.metrics import parse_metrics
from progenitor.errors import CandidateDataError, UserError
from progenitor.task.placeholders import fill
from progenitor.task.spec import Predictions, TaskSpec


class Score(BaseModel):
    ok: bool
    metrics: dict[str, float] = {}
    reason: str = ""
    log: str = ""


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


SHOWN_LINES = 5
"""How many of a trusted command's last output lines an error quotes."""


def last_lines(text: str, lines: int = SHOWN_LINES) -> str:
    """A command's last non-empty output lines, on one line: ``a | b``, each cut to 200
    characters (an error that says what the command printed, and stays one line)."""
    kept = [line.strip()[:200] for line in text.strip().splitlines() if line.strip()][-lines:]
    if not kept:
        return "it printed nothing"
    return f"its last line{'s' if len(kept) > 1 else ''}: {' | '.join(kept)}"


def trusted_env() -> dict[str, str]:
    """The caller's environment with this interpreter's bin directory first on PATH, so that
    ``python`` in a task's commands is the Python progenitor runs in (a virtualenv that was
    never activated included), as it is inside the sandboxes."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    return env


class TimedOut(subprocess.CompletedProcess):
    """What ``run_trusted`` returns for a command that ran past its timeout: exit code -9, the
    reason (``<what> timed out after <timeout> s``) as its stderr."""


def run_trusted(command: str, cwd: Path, timeout: float, what: str) -> subprocess.CompletedProcess:
    """Run a trusted command in ``cwd`` with its output captured; past ``timeout`` seconds it is
    killed and the result is a ``TimedOut``."""
    try:
        return subprocess.run(
            command, shell=True, cwd=cwd, capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL, env=trusted_env(),
        )
    except subprocess.TimeoutExpired:
        return TimedOut(command, -9, "", f"{what} timed out after {timeout:g} s")


def run_prepare(spec: TaskSpec, trusted: Path, data: Path) -> None:
    """Run the trusted prepare command into ``data``; a failure is a ``UserError`` quoting its output."""
    command = fill(spec.data.prepare, {"data": data}, "data.prepare")
    proc = run_trusted(command, trusted, spec.data.timeout, "data.prepare")
    if proc.returncode != 0:
        raise UserError(f"data.prepare failed (exit {proc.returncode}); {last_lines(proc.stdout + chr(10) + proc.stderr)}")


def prepare_data(spec: TaskSpec, trusted: Path, data: Path, visible: Path) -> list[str]:
    """Run the trusted prepare command once; copy the visible files. Returns visible names."""
    marker = data / ".prepared"
    if not marker.exists():
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True)
        run_prepare(spec, trusted, data)
        marker.write_text("ok\n")
    from progenitor.evaluation.visible import visible_matches

    items, problems = visible_matches(spec, data)
    if len(problems) == 1:
        raise UserError(problems[0])
    if problems:
        raise UserError(f"{len(problems)} problems with data.visible:" + "".join(f"\n  - {p}" for p in problems),
                        problems=problems)
    copy_visible(items, data, visible)
    return [str(item.relative_to(data)) for item in items]


def copy_visible(items: list[Path], data: Path, visible: Path) -> None:
    """Copy what a candidate may read into a directory of its own (links are not kept)."""
    shutil.rmtree(visible, ignore_errors=True)
    visible.mkdir(parents=True)
    for item in items:
        target = visible / item.relative_to(data)
        if item.is_dir():
            shutil.copytree(item, target, symlinks=False)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(item, target)


def check_predictions(expect: Optional[Predictions], data: Path, out: Path) -> Optional[str]:
    """Why the candidate's predictions cannot be scored, or None if they can.

    The file is read through the boundary (``boundary.arrays``): a plain ``.npy`` array of real
    numbers whose size is what its header says, mapped, never loaded whole; whatever the file
    holds, the answer is a reason or None, never an exception."""
    import numpy as np

    if expect is None:
        return None
    path = out / expect.file
    if not path.is_file() or path.is_symlink():
        return f"no predictions: the candidate did not write {expect.file} to its outputs"
    try:
        predictions = read_array(path)
    except CandidateDataError as exc:
        return f"predictions file {expect.file} refused: {exc}"
    if predictions.ndim == 0 or predictions.size == 0:
        return "predictions are empty"
    if predictions.dtype.kind == "f":
        nan = sum(int(np.isnan(part).sum()) for part in chunks(predictions))
        if nan:
            return f"predictions contain NaN ({nan} values)"
        inf = sum(int(np.isinf(part).sum()) for part in chunks(predictions))
        if inf:
            return f"predictions contain infinite values ({inf} values)"
    if expect.match:
        reference = np.load(data / expect.match, allow_pickle=False, mmap_mode="r")  # trusted: the run's own data
        if predictions.shape[0] != reference.shape[0]:
            return (f"predictions are mis-shaped: {predictions.shape[0]} rows, "
                    f"expected {reference.shape[0]} (one per row of {expect.match})")
    return None


def score(spec: TaskSpec, trusted: Path, data: Path, out: Path, scores: Optional[Path] = None) -> Score:
    """Measure one candidate's outputs with the trusted scorer, on the holdout. ``scores``: a
    directory of the trusted side's, emptied first, for ``{scores}`` (per-example scores)."""
    return run_scorer(spec, spec.scorer.command, spec.scorer.predictions, trusted, data, out, "scorer.command", scores)


def score_test(spec: TaskSpec, trusted: Path, data: Path, out: Path, scores: Optional[Path] = None) -> Optional[Score]:
    """Measure outputs on the final test split (None: the task has none). Its metrics are
    named ``test_<metric>``, so they can never be mistaken for the holdout's."""
    if spec.scorer.test is None:
        return None
    result = run_scorer(spec, spec.scorer.test.command, spec.scorer.test.predictions, trusted, data, out,
                        "scorer.test.command", scores)
    return result.model_copy(update={"metrics": {f"test_{k}": v for k, v in result.metrics.items()}})


def scores_dir(path: Optional[Path]) -> Optional[Path]:
    """``{scores}`` for one scoring: the directory, made empty (what a scorer left there before
    is not this scoring's)."""
    if path is None:
        return None
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def run_scorer(spec: TaskSpec, template: str, expect: Optional[Predictions], trusted: Path, data: Path,
               out: Path, field: str, scores: Optional[Path] = None) -> Score:
    problem = check_predictions(expect, data, out)
    if problem:
        return Score(ok=False, reason=problem)
    return run_scorer_command(spec, template, {"data": data, "out": out, "scores": scores_dir(scores)}, trusted, field)


def run_scorer_command(spec: TaskSpec, template: str, values: dict[str, Optional[Path]], trusted: Path,
                       field: str) -> Score:
    """Run a trusted scorer command with its placeholders filled from ``values``; its metrics."""
    command = fill(template, values, field)
    proc = run_trusted(command, trusted, spec.scorer.timeout, "the scorer")
    printed = proc.stdout + "\n" + proc.stderr
    log = _tail(printed)
    if proc.returncode != 0:
        return Score(ok=False, log=log,
                     reason=f"the scorer rejected the outputs (exit {proc.returncode}); {last_lines(printed)}")
    metrics = parse_metrics(proc.stdout)
    metric = spec.objective.metric
    if metric not in metrics:
        return Score(ok=False, metrics=metrics, log=log,
                     reason=(f"the scorer printed no '{metric}' metric (as a '{metric}: value' line or in a "
                             f"JSON object line); {last_lines(proc.stdout)}"))
    bad = [name for name, value in metrics.items() if not math.isfinite(value)]
    if bad:
        return Score(ok=False, metrics=metrics, log=log,
                     reason=f"the scorer measured non-finite {', '.join(bad)}; {last_lines(proc.stdout)}")
    return Score(ok=True, metrics=metrics, log=log)
