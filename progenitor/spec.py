"""The task spec: what ``progenitor.yaml`` at a model repo's root declares.

Every model is ``extra="forbid"`` so that a misspelt key is an error, not a silent
default. ``load_spec`` turns pydantic's errors into one sentence that names the file, the
field, the bad value and what is allowed.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Optional, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from progenitor.errors import SpecError
from progenitor.placeholders import ALLOWED, check_placeholders

SPEC_FILE = "progenitor.yaml"

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(value: Union[str, int]) -> int:
    """``"2g"`` -> bytes. Integers are taken as bytes."""
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a size; write it like 512m or 2g")
    number, unit = match.groups()
    return int(float(number) * _UNITS[unit.lower()])


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _placeholders(field: str):
    """A validator: the command uses only the placeholders its field allows."""

    def check(cls, v: str) -> str:
        check_placeholders(v, ALLOWED[field])
        return v

    return field_validator(field.split(".")[-1])(classmethod(check))


class Objective(_Strict):
    metric: str
    """Name of the scorer's metric that selection optimises (e.g. ``accuracy``)."""
    goal: Literal["maximize", "minimize"] = "maximize"
    """Whether a larger or a smaller value is better."""
    target: Optional[float] = None
    """Stop the run once the champion reaches this value (optional)."""
    min_delta: float = 0.0
    """A candidate must beat the champion by more than this to be promoted."""

    def better(self, a: float, b: float) -> bool:
        """Is ``a`` better than ``b`` by more than ``min_delta``?"""
        return a > b + self.min_delta if self.goal == "maximize" else a < b - self.min_delta

    def reached(self, value: float) -> bool:
        if self.target is None:
            return False
        return value >= self.target if self.goal == "maximize" else value <= self.target


class Resources(_Strict):
    cpus: float = Field(1.0, gt=0)
    """CPU cores for one candidate's training (fractions allowed)."""
    gpus: float = Field(0.0, ge=0)
    """GPUs for one candidate's training (fractions allowed with Ray)."""
    memory: str = "2g"
    """Memory limit, like ``512m`` or ``2g``."""
    processes: int = Field(512, ge=1)
    """Most processes/threads the candidate may start (stops fork bombs)."""

    @field_validator("memory")
    @classmethod
    def _memory(cls, v: str) -> str:
        parse_size(v)
        return v

    @property
    def memory_bytes(self) -> int:
        return parse_size(self.memory)


class EarlyStop(_Strict):
    metric: str
    """Key in the candidate's progress lines (e.g. ``val_accuracy``) compared with the champion's curve."""
    goal: Literal["maximize", "minimize"] = "maximize"
    """Whether a larger or a smaller value of ``metric`` is better."""
    rule: Literal["wilcoxon", "median"] = "wilcoxon"
    """Optuna pruner that decides: a signed-rank test over shared steps, or the median rule."""
    margin: float = Field(0.0, ge=0)
    """How far behind the champion, in the metric's units, counts as clearly behind."""
    warmup_steps: int = Field(3, ge=1)
    """Progress points a candidate reports before it may be stopped."""


class Train(_Strict):
    command: str
    """Shell command run in the candidate's sandbox; ``{data}``, ``{out}`` and ``{tree}`` are filled in."""
    timeout: float = Field(600.0, gt=0)
    """Wall-clock seconds before the candidate is killed."""
    resources: Resources = Resources()
    """What one candidate's training may use."""
    progress: Optional[str] = "progress.jsonl"
    """File in ``{out}`` where the candidate may append intermediate metrics as JSON lines."""
    early_stop: Optional[EarlyStop] = None
    """Stop a candidate that is clearly behind the champion at the same step (needs ``progress``)."""

    _command = _placeholders("train.command")


class Data(_Strict):
    prepare: str
    """Trusted command (from the base commit) that writes the data splits into ``{data}``, once per run."""
    visible: list[str] = ["train*", "holdout_inputs*"]
    """Glob patterns of files in ``{data}`` that a candidate may read; everything else stays hidden."""
    timeout: float = Field(600.0, gt=0)
    """Wall-clock seconds the prepare command may take."""

    _prepare = _placeholders("data.prepare")


class Predictions(_Strict):
    file: str = "predictions.npy"
    """File in the candidate's ``{out}`` that holds its predictions (``.npy``)."""
    match: Optional[str] = None
    """Data file (e.g. ``holdout_labels.npy``) whose length the predictions must have."""


class Scorer(_Strict):
    command: str
    """Trusted command (from the base commit) that prints ``metric: value`` lines or a JSON
    object line (``{"rmse": 54.9}``); ``{data}`` and ``{out}`` are filled in."""
    timeout: float = Field(300.0, gt=0)
    """Wall-clock seconds the scorer may take."""
    predictions: Optional[Predictions] = Predictions()
    """What progenitor checks before the scorer runs (missing, NaN, infinite, mis-shaped)."""
    self_report_gap: float = Field(0.05, ge=0)
    """A gap larger than this between what the candidate printed and what the scorer measured is a finding."""

    _command = _placeholders("scorer.command")


class Param(_Strict):
    type: Literal["int", "float", "categorical"]
    """Kind of knob."""
    low: Optional[float] = None
    high: Optional[float] = None
    log: bool = False
    """Sample on a log scale (int and float)."""
    step: Optional[float] = None
    choices: Optional[list[Any]] = None
    """Allowed values (categorical)."""

    @model_validator(mode="after")
    def _check(self) -> "Param":
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical parameter needs a non-empty 'choices' list")
        else:
            if self.low is None or self.high is None:
                raise ValueError(f"an {self.type} parameter needs 'low' and 'high'")
            if self.low >= self.high:
                raise ValueError(f"'low' ({self.low}) must be below 'high' ({self.high})")
            if self.log and self.low <= 0:
                raise ValueError("a log-scale parameter needs 'low' > 0")
        return self


class SearchSpace(_Strict):
    file: str
    """The config file (YAML, JSON or TOML) the offline coder writes values into."""
    params: dict[str, Param]
    """Knobs by (dotted) key in that file."""

    @field_validator("file")
    @classmethod
    def _suffix(cls, v: str) -> str:
        if Path(v).suffix.lower() not in (".yaml", ".yml", ".json", ".toml"):
            raise ValueError(f"{v!r} must be a .yaml, .yml, .json or .toml file")
        return v


class Guard(_Strict):
    metric: str
    """Scorer metric the guard watches."""
    min: Optional[float] = None
    """The metric may not go below this."""
    max: Optional[float] = None
    """The metric may not go above this."""
    max_regression: Optional[float] = None
    """How much worse than the champion's value it may get (in the guard's ``goal`` direction)."""
    goal: Literal["maximize", "minimize"] = "maximize"

    @model_validator(mode="after")
    def _some_bound(self) -> "Guard":
        if self.min is None and self.max is None and self.max_regression is None:
            raise ValueError("a guard needs at least one of 'min', 'max' or 'max_regression'")
        return self


class Budget(_Strict):
    generations: int = Field(3, ge=1)
    """Turns of the loop."""
    candidates: int = Field(4, ge=1, le=64)
    """Candidates proposed per generation."""
    cpu_hours: Optional[float] = Field(None, gt=0)
    """Stop after the generation in which the run's sandbox CPU-hours reach this."""
    gpu_hours: Optional[float] = Field(None, gt=0)
    """Stop after the generation in which the run's sandbox GPU-hours reach this."""
    wall_hours: Optional[float] = Field(None, gt=0)
    """Stop after the generation in which the run's wall time reaches this."""
    dollars: Optional[float] = Field(None, gt=0)
    """Stop after the generation in which LLM spend reaches this."""


class Oversight(_Strict):
    mode: Literal["auto", "approver", "auditor"] = "auto"
    """auto: decide by policy and escalate; approver: wait for a person; auditor: record, never block."""
    max_jump: Optional[float] = None
    """Escalate when the objective improves by more than this in one generation."""


Severity = Literal["info", "low", "medium", "high", "critical"]
"""How grave a safety finding is, least to most."""


class Safety(_Strict):
    constitution: Optional[str] = None
    """Protected file with the machine-checkable rules every generation inherits."""
    block_at: Severity = "high"
    """Findings at or above this severity reject a candidate before it runs."""
    bandit: bool = True
    """Run bandit on changed Python files."""


class SandboxConfig(_Strict):
    backend: Literal["auto", "process", "docker"] = "auto"
    """Where candidates run: docker when a daemon answers, else process."""
    image: Optional[str] = None
    """Docker image for this task (default: built by ``progenitor sandbox build``)."""


class TaskSpec(_Strict):
    name: str
    """Short name of the task."""
    objective: Objective
    data: Data
    train: Train
    scorer: Scorer
    protected: list[str] = []
    """Paths (globs) a candidate may not change; progenitor.yaml is always protected."""
    search_space: Optional[SearchSpace] = None
    guards: list[Guard] = []
    budget: Budget = Budget()
    oversight: Oversight = Oversight()
    safety: Safety = Safety()
    sandbox: SandboxConfig = SandboxConfig()
    seed: int = 0
    """Seed of the search architect."""

    @property
    def protected_paths(self) -> list[str]:
        """Declared protected paths plus the files progenitor always protects."""
        always = [SPEC_FILE]
        if self.safety.constitution:
            always.append(self.safety.constitution)
        return list(dict.fromkeys([*always, *self.protected]))


def _field_path(loc: tuple) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item in ("function-after", "function-before") or "[" in str(item):
            continue
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "(top level)"


def _allowed(err: dict) -> str:
    ctx = err.get("ctx") or {}
    kind = err["type"]
    if kind == "extra_forbidden":
        return "remove it or check its spelling"
    if kind == "missing":
        return "add it"
    if kind == "literal_error" and "expected" in ctx:
        return f"allowed: {ctx['expected']}"
    if "error" in ctx:
        return ""
    return err["msg"][0].lower() + err["msg"][1:]


def _unwrap(tp: Any) -> Any:
    """``Optional[X]`` -> ``X``: the model a nullable field holds."""
    if get_origin(tp) in (Union, UnionType):
        members = [a for a in get_args(tp) if a is not type(None)]
        if len(members) == 1:
            return members[0]
    return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """The field names valid at ``loc`` (an error's location, its last item the bad key), by
    walking the model's annotations through nested models, lists and dicts."""
    tp: Any = model
    for part in loc[:-1]:
        tp = _unwrap(tp)
        if _is_model(tp) and part in tp.model_fields:
            tp = tp.model_fields[part].annotation
        elif get_origin(tp) in (list, tuple, set) and isinstance(part, int):
            tp = get_args(tp)[0]
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        elif isinstance(part, str) and ("[" in part or part.startswith("function-")):
            continue  # pydantic's own tags (validators, union members)
        else:
            return []
    tp = _unwrap(tp)
    return list(tp.model_fields) if _is_model(tp) else []


def did_you_mean(name: str, choices: list[str]) -> str:
    """``"did you mean 'hidden'?"`` for the nearest of ``choices``, or ``""``."""
    near = difflib.get_close_matches(name, choices, n=1)
    return f"did you mean '{near[0]}'?" if near else ""


def describe_validation_error(source: str, exc: ValidationError, model: Optional[type[BaseModel]] = None) -> str:
    """One sentence for the first error, mentioning how many more there are. With ``model``
    (the one validated), an unknown key gets the nearest valid name at its level."""
    errors = exc.errors()
    err = errors[0]
    field = _field_path(err["loc"])
    kind = err["type"]
    if kind == "missing":
        text = f"{source}: required field '{field}' is missing; add it"
    elif kind == "extra_forbidden":
        valid = fields_at(model, err["loc"]) if model is not None else []
        hint = did_you_mean(str(err["loc"][-1]), valid)
        text = f"{source}: unknown field '{field}'; " + (hint or "remove it or check its spelling")
    else:
        reason = str((err.get("ctx") or {}).get("error") or "")
        allowed = _allowed(err)
        text = f"{source}: field '{field}' has bad value {err.get('input')!r}"
        text += f": {reason}" if reason else (f" ({allowed})" if allowed else "")
    if len(errors) > 1:
        text += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return text


def parse_spec(data: Any, source: str = SPEC_FILE) -> TaskSpec:
    if not isinstance(data, dict):
        raise SpecError(f"{source}: expected a mapping of fields at the top level, got {type(data).__name__}")
    try:
        return TaskSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(describe_validation_error(source, exc, TaskSpec)) from None


def load_spec(path: Union[str, Path]) -> TaskSpec:
    """Read and validate a ``progenitor.yaml`` (a file, or a directory holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / SPEC_FILE
    if not path.exists():
        raise SpecError(f"{path}: not found; run 'progenitor init {path.parent}' to write a template")
    return load_spec_text(path.read_text(encoding="utf-8"), str(path))


def load_yaml(text: str, source: str, error: type = SpecError) -> Any:
    """Parse YAML; a syntax error is one ``error`` naming ``source`` and the line."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise error(f"{source}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None


def load_spec_text(text: str, source: str = SPEC_FILE) -> TaskSpec:
    return parse_spec(load_yaml(text, source), source)
