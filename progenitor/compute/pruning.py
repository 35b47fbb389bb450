"""Early stopping: stop a candidate that is clearly behind the champion at the same step.

A candidate may append ``{"step": n, "<metric>": v}`` lines to a JSON-lines file in its
outputs while it trains. The worker reads the new lines about once a second and asks
Optuna whether to stop: the champion's curve is a completed trial of an in-memory study,
the candidate a running trial that reports each step, and one of Optuna's pruners decides.
The rule travels as a small ``PruneConfig`` (picklable, so it ships inside a Ray task) and
the Optuna objects are built on the worker that watches the job.

The champion's curve is the champion's own word about itself, written by its code: before it
prunes anyone, ``check_curve`` holds it against the champion's trusted score (what the
scorer measured for the same metric). A curve whose last point is further from that score
than ``scorer.self_report_gap``, that is better than it anywhere by more than the gap (a
curve flattering the champion early would stop honest candidates at early steps), or that
holds a NaN is not used - that generation trains without early stopping - and the gap is a
finding on the champion. A curve whose metric the scorer does not measure cannot be checked
and is not used either (the task can name the scorer metric that checks it:
``early_stop.trusted_metric``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import warnings
from pathlib import Path
from typing import Iterator, Literal, NamedTuple, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

READ_CAP_BYTES = 1 << 20
"""Most bytes of progress read per look: the file is the candidate's, so it may be huge."""
CURVE_CAP_BYTES = 16 << 20
"""Most bytes of a finished run's progress file read as its curve."""


class PruneConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: str
    """Key in each progress line whose value is compared, e.g. ``val_loss``."""
    goal: Literal["maximize", "minimize"] = "maximize"
    """Whether a larger or a smaller value of ``metric`` is better."""
    champion: dict[int, float]
    """The champion's curve: the metric's value by step, read from its own progress file."""
    rule: Literal["wilcoxon", "median"] = "wilcoxon"
    """Which Optuna pruner decides. ``wilcoxon``: a signed-rank test over the steps both have
    reported says the candidate is worse (``WilcoxonPruner``); ``median``: the candidate's best
    value so far is worse than the champion's at the current step (``MedianPruner``)."""
    margin: float = Field(0.0, ge=0)
    """How far behind counts as clearly behind, in the metric's units: the champion's curve is
    handicapped by this much before the comparison."""
    warmup_steps: int = Field(3, ge=1)
    """Progress points a candidate reports before it may be stopped (early steps are noisy)."""
    p_threshold: float = Field(0.1, gt=0, lt=1)
    """``wilcoxon`` only: the p-value under which the candidate is taken to be worse."""

    @field_validator("champion")
    @classmethod
    def _some_points(cls, v: dict[int, float]) -> dict[int, float]:
        if not v:
            raise ValueError("the champion's curve needs at least one point to compare against")
        if not all(math.isfinite(x) for x in v.values()):
            raise ValueError("the champion's curve holds a NaN or infinite value")
        return v

    def watcher(self, progress_file: str) -> "ProgressWatcher":
        """The callable ``execute_job(watch=...)`` expects, reading ``progress_file`` in the outputs."""
        return ProgressWatcher(self, progress_file)


def parse_progress(text: str, metric: str) -> dict[int, float]:
    """Steps and values of ``metric`` in JSON-lines text; lines without both are skipped."""
    return dict(_points(text.splitlines(), metric))


def read_curve(path: Path, metric: str) -> dict[int, float]:
    """A finished run's curve (e.g. the champion's) from its progress file; empty if none
    (or a link, or not a regular file: the file is a candidate's). At most ``CURVE_CAP_BYTES`` are read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return {}
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return {}
        data = f.read(CURVE_CAP_BYTES)
    return parse_progress(data.decode("utf-8", errors="replace"), metric)


def read_curves(path: Path, metrics: int = 4, points: int = 200) -> dict[str, list[list[float]]]:
    """Every numeric key of a progress file (up to ``metrics`` of them, ``points`` each, evenly
    thinned) as ``[step, value]`` pairs, for a person to look at; read as ``read_curve`` reads.
    What a candidate writes about itself: shown as its word, never as the score."""
    found: dict[str, dict[int, float]] = {}
    for name in _keys(path, metrics):
        curve = read_curve(path, name)
        if curve:
            found[name] = curve
    out = {}
    for name, curve in found.items():
        steps = sorted(curve)
        if len(steps) > points:
            steps = [steps[round(i * (len(steps) - 1) / (points - 1))] for i in range(points)]
        out[name] = [[step, curve[step]] for step in steps if math.isfinite(curve[step])]
    return out


def _keys(path: Path, limit: int) -> list[str]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return []
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return []
        head = f.read(65_536).decode("utf-8", errors="replace").splitlines()[:50]
    keys: list[str] = []
    for line in head:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        for key, value in record.items():
            if (key != "step" and isinstance(key, str) and len(key) <= 64 and key not in keys
                    and isinstance(value, (int, float)) and not isinstance(value, bool)):
                keys.append(key)
    return keys[:limit]


class CurveCheck(NamedTuple):
    """Whether a champion's curve may prune anyone (``check_curve``)."""

    usable: bool
    reason: str = ""
    """Why it is not used (empty when it is)."""
    gap: bool = False
    """It disagrees with the trusted score: a finding on the candidate that wrote it."""


def check_curve(curve: dict[int, float], metric: str, trusted: Optional[float], gap: float,
                goal: Literal["maximize", "minimize"]) -> CurveCheck:
    """May this finished curve prune other candidates? ``trusted``: what the scorer measured
    for ``metric`` on the same candidate (None: it does not measure it)."""
    if not curve:
        return CurveCheck(False, "the champion wrote no progress curve")
    if trusted is None or not math.isfinite(trusted):
        return CurveCheck(False, f"the scorer does not measure {metric!r}, so the champion's curve cannot be checked")
    odd = next((step for step, value in sorted(curve.items()) if not math.isfinite(value)), None)
    if odd is not None:
        return CurveCheck(False, f"the champion's curve holds {curve[odd]} at step {odd}", gap=True)
    last = max(curve)
    if not abs(curve[last] - trusted) <= gap:
        return CurveCheck(False, (f"the champion's curve ends at {metric} {curve[last]:.4g} (step {last}) but the "
                                  f"scorer measured {trusted:.4g}: a gap over scorer.self_report_gap ({gap:g})"), gap=True)
    sign = 1.0 if goal == "maximize" else -1.0
    flattering = next((s for s, v in sorted(curve.items()) if sign * (v - trusted) > gap), None)
    if flattering is not None:
        return CurveCheck(False, (f"the champion's curve claims {metric} {curve[flattering]:.4g} at step {flattering}, "
                                  f"better than the {trusted:.4g} the scorer measured by more than "
                                  f"scorer.self_report_gap ({gap:g})"), gap=True)
    return CurveCheck(True)


def _points(lines: list[str], metric: str) -> Iterator[tuple[int, float]]:
    for line in lines:
        try:
            record = json.loads(line)
            step, value = record["step"], record[metric]
        except (ValueError, KeyError, TypeError):
            continue
        if isinstance(step, bool) or not isinstance(step, int) or not isinstance(value, (int, float)):
            continue
        yield step, float(value)


class ProgressWatcher:
    """Reads a candidate's progress file incrementally and says when to stop it."""

    def __init__(self, config: PruneConfig, progress_file: str):
        self.config = config
        self.progress_file = progress_file
        self.points: dict[int, float] = {}
        self._offset = 0
        self._partial = b""
        self._trial = None

    def __call__(self, out: Path) -> Optional[dict]:
        new = [(s, v) for s, v in _points(self._read_new(out / self.progress_file), self.config.metric)
               if s not in self.points]
        if not new:
            return None
        trial = self._trial or self._start()
        for step, value in new:
            self.points[step] = value
            if not math.isfinite(value):
                # A diverged run never catches up; Optuna's pruners would keep it running.
                return self._verdict(step, value, "diverged: ")
            trial.report(value, step)
        if len(self.points) < self.config.warmup_steps or not trial.should_prune():
            return None
        return self._verdict(*new[-1])

    def prime(self) -> None:
        """Build the pruner now (importing Optuna takes seconds on a busy machine), so that
        the first progress points are judged as they come."""
        if self._trial is None:
            self._start()

    def _read_new(self, path: Path) -> list[str]:
        """Complete lines appended since the last look; symlinks and non-files are ignored."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return []
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return []
            f.seek(self._offset)
            chunk = f.read(READ_CAP_BYTES)
        self._offset += len(chunk)
        data = self._partial + chunk
        head, _, self._partial = data.rpartition(b"\n")
        if len(self._partial) > READ_CAP_BYTES:
            self._partial = b""  # one absurd line: drop it rather than hold it forever
        return head.decode("utf-8", errors="replace").splitlines()

    def _start(self):
        """The in-memory study: the champion's curve as a completed trial, the candidate running."""
        import optuna

        cfg = self.config
        worse = -cfg.margin if cfg.goal == "maximize" else cfg.margin
        curve = {step: value + worse for step, value in cfg.champion.items()}
        last = curve[max(curve)]
        with _quiet_optuna():
            pruner = (
                optuna.pruners.WilcoxonPruner(p_threshold=cfg.p_threshold, n_startup_steps=0)
                if cfg.rule == "wilcoxon"
                else optuna.pruners.MedianPruner(n_startup_trials=0, n_warmup_steps=0)
            )
            study = optuna.create_study(direction=cfg.goal, pruner=pruner)
            study.add_trial(optuna.trial.create_trial(value=last, intermediate_values=curve))
            self._trial = study.ask()
        return self._trial

    def _verdict(self, step: int, value: float, prefix: str = "") -> dict:
        cfg = self.config
        reference = cfg.champion.get(step)
        against = f"the champion's {reference:.4g}" if reference is not None else "the champion's curve"
        return {
            "reason": f"{prefix}{cfg.metric} {value:.4g} at step {step} is clearly behind {against}",
            "step": step,
            "metric": cfg.metric,
            "value": value if math.isfinite(value) else str(value),
            "champion": reference,
            "rule": cfg.rule,
            "points": len(self.points),
        }


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna logs every study and trial at INFO, and flags WilcoxonPruner as experimental;
    neither is news to the person watching a run."""
    import optuna

    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(before)
