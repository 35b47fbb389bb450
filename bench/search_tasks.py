"""The bench's tasks: the bundled examples, trained in this process with their own code.

Each task reads its example's ``progenitor.yaml`` (objective, search space, guards), prepares
its data once with the example's trusted ``prepare.py``, and evaluates a set of values the way
a candidate would be: the example's ``train.py`` with the values written over its
``config.yaml``, scored like its ``score.py`` scores (the same functions), on the holdout (with
per-example scores) and on the test split. A training is deterministic, so its result is cached
by its values (``--cache``), shared by every search of the run.

``RepoTask`` benches any task repository the same way, through its own commands: the trusted
``data.prepare`` once, then for each set of values a copy of the repository with the values
written into its ``search_space.file`` (as the loop's coder writes them), its ``train.command``
run there (no sandbox: a bench of one's own code) and its trusted scorer and test scorer run on
the outputs. ``--repo PATH`` on ``bench/search_quality.py`` compares the searches on it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

import numpy as np
import yaml
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

__all__ = ["Eval", "RepoTask", "Task", "TASKS", "load_task"]


class Eval(BaseModel):
    """One training of one set of values."""

    metrics: dict[str, float]
    """The scorer's holdout figures (the objective and the guards' metrics); empty when the
    training or its scoring failed (``failure`` says why)."""
    test: float
    """The objective on the test split."""
    per_example: list[float]
    """The per-example holdout scores the paired test reads."""
    failure: str = ""
    """Why the training or its scoring failed (``RepoTask``): a failed trial for every search."""
    timed_out: bool = False
    """The failure was a timeout: kept for this run of the bench, not in ``--cache`` (a busy
    machine's timeout is no property of the values)."""


def _module(path: Path, name: str):
    """Import an example's file as a module (its directory first on the path, as when it runs)."""
    if name in sys.modules:
        return sys.modules[name]
    sys.path.insert(0, str(path.parent))
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # pydantic resolves the module's annotations through it
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(path.parent))


class Task:
    """An example as the bench trains it."""

    name = ""

    def __init__(self, cache: Optional[Path] = None):
        from progenitor.task.spec import load_spec

        self.dir = EXAMPLES / self.name
        self.spec = load_spec(self.dir)
        self.config = yaml.safe_load((self.dir / self.spec.search_space.file).read_text())
        self.baseline = {n: self.config[n] for n in self.spec.search_space.params}
        self.cache_file = cache / f"{self.name}.jsonl" if cache else None
        self._cache: dict[str, Eval] = {}
        self._data: Optional[Path] = None

    @property
    def data(self) -> Path:
        """The prepared splits, made once per process by the example's prepare.py."""
        if self._data is None:
            self._data = Path(tempfile.mkdtemp(prefix=f"bench-{self.name}-"))
            subprocess.run([sys.executable, "prepare.py", "--out", str(self._data)], cwd=self.dir, check=True,
                           capture_output=True)
        return self._data

    def close(self) -> None:
        """Remove the prepared splits (a later ``data`` prepares them again)."""
        if self._data is not None:
            shutil.rmtree(self._data, ignore_errors=True)
            self._data = None

    def _load_cache(self) -> None:
        if self.cache_file is None or self._cache or not self.cache_file.exists():
            return
        for line in self.cache_file.read_text().splitlines():
            if line.strip():
                key, value = json.loads(line)
                self._cache[key] = Eval.model_validate(value)

    def evaluate(self, params: dict[str, Any]) -> Eval:
        self._load_cache()
        key = json.dumps(params, sort_keys=True, default=str)
        if key not in self._cache:
            self._cache[key] = self.train({**self.config, **params})
            if self.cache_file is not None and not self._cache[key].timed_out:
                self.cache_file.parent.mkdir(parents=True, exist_ok=True)
                with open(self.cache_file, "a") as f:  # one short line per write: appends do not interleave
                    f.write(json.dumps([key, self._cache[key].model_dump()]) + "\n")
        return self._cache[key]

    def train(self, config: dict[str, Any]) -> Eval:
        raise NotImplementedError


class Tabular(Task):
    """examples/tabular: gradient-boosted trees on the diabetes data (RMSE, per-example squared errors)."""

    name = "tabular"

    def train(self, config: dict[str, Any]) -> Eval:
        train = _module(self.dir / "train.py", "tabular_train")
        score = _module(self.dir / "score.py", "tabular_score")
        model = train.fit(train.Config.model_validate(config), self.data)
        errors = {}
        for split in ("holdout", "test"):
            x = np.load(self.data / f"{split}_inputs.npy", allow_pickle=False)
            y = np.load(self.data / f"{split}_labels.npy", allow_pickle=False)
            errors[split] = score.squared_errors(model.predict(x), y)
        e = errors["holdout"]
        return Eval(metrics={"rmse": float(np.sqrt(e.mean())), "mae": float(np.sqrt(e).mean())},
                    test=float(np.sqrt(errors["test"].mean())), per_example=[float(v) for v in e])


class Digits(Task):
    """examples/digits: the PyTorch MLP on the 8x8 digits (accuracy, per-example 0/1, guards on
    params and calibration)."""

    name = "digits"

    def train(self, config: dict[str, Any]) -> Eval:
        import torch

        torch.set_num_threads(1)
        train = _module(self.dir / "train.py", "digits_train")
        score = _module(self.dir / "score.py", "digits_score")
        cfg = train.Config.model_validate(config)
        torch.manual_seed(cfg.seed)
        with tempfile.TemporaryDirectory() as tmp:
            model, _ = train.train(cfg, train.load_data(self.data, cfg), Path(tmp) / "progress.jsonl")
        model.eval()
        out = {}
        for split in ("holdout", "test"):
            x = torch.from_numpy(np.load(self.data / f"{split}_inputs.npy", allow_pickle=False).astype(np.float32))
            with torch.no_grad():  # what model.py's predict returns, without the weights' round trip
                probs = torch.softmax(model(x / train.PIXEL_MAX), dim=1).numpy()
            labels = np.load(self.data / f"{split}_labels.npy", allow_pickle=False)
            out[split] = (score.check_predictions(probs, labels), labels)
        probs, labels = out["holdout"]
        right = score.correct(probs, labels)
        picked = np.clip(probs[np.arange(len(labels)), labels], score.PROB_EPS, 1.0)
        test_probs, test_labels = out["test"]
        return Eval(metrics={"accuracy": float(right.mean()), "log_loss": float(-np.log(picked).mean()),
                             "ece": score.expected_calibration_error(probs, labels),
                             "params": float(sum(p.numel() for p in model.parameters()))},
                    test=float(score.correct(test_probs, test_labels).mean()), per_example=[float(v) for v in right])


NOT_COPIED = (".git", ".progenitor")
"""What a training's copy of a repository leaves out: its history, and progenitor's runs."""


def _digest(repo: Path) -> str:
    """A short hash of the repository's files (what is copied for a training), names and bytes."""
    import hashlib

    h = hashlib.sha256()
    for top, dirs, files in os.walk(repo):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not (Path(top) == repo and d in NOT_COPIED))
        for name in sorted(files):
            path = Path(top, name)
            if path.is_file():
                h.update(str(path.relative_to(repo)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:12]


class RepoTask(Task):
    """A task repository of one's own, trained and scored by its own commands."""

    def __init__(self, repo: Path, cache: Optional[Path] = None):
        from progenitor.agents.coder.offline import read_params
        from progenitor.errors import UserError
        from progenitor.task.config_files import read_config
        from progenitor.task.spec import load_spec

        self.dir = repo.resolve()
        self.name = self.dir.name
        self.spec = load_spec(self.dir)
        if self.spec.search_space is None:
            raise UserError(f"{repo}: progenitor.yaml has no search_space, so there is nothing to search")
        if self.spec.evaluate != "predictions":
            raise UserError(f"{repo}: the bench scores predictions; this task has evaluate: {self.spec.evaluate}")
        if self.spec.scorer.test is None:
            raise UserError(f"{repo}: the bench compares test-split figures; this task has no scorer.test")
        self.config = read_config(self.dir, self.spec.search_space.file)
        self.baseline = read_params(self.dir, self.spec)
        # Keyed by the repository's content: another repository of the same name, or this one
        # edited (its train.py, its prepare), does not read results that are not its own.
        self.cache_file = cache / f"repo-{self.name}-{_digest(self.dir)}.jsonl" if cache else None
        self._cache = {}
        self._data = None
        self._visible: Optional[Path] = None

    @property
    def data(self) -> Path:
        if self._data is None:
            from progenitor.evaluation.scorer import prepare_data

            self._data = Path(tempfile.mkdtemp(prefix=f"bench-{self.name}-"))
            self._visible = self._data / "visible"
            prepare_data(self.spec, self.dir, self._data / "data", self._visible)
        return self._data

    def train(self, config: dict[str, Any]) -> Eval:
        from progenitor.evaluation.scorer import TimedOut, run_trusted, score, score_test
        from progenitor.evaluation.significance import PER_EXAMPLE_FILE, load_per_example
        from progenitor.task.config_files import config_text, set_values
        from progenitor.task.placeholders import fill

        spec, metric = self.spec, self.spec.objective.metric
        data = self.data / "data"
        values = {name: config[name] for name in spec.search_space.params}
        with tempfile.TemporaryDirectory(prefix=f"bench-{self.name}-run-") as tmp:
            tree, out, scores = Path(tmp, "tree"), Path(tmp, "out"), Path(tmp, "scores")
            shutil.copytree(self.dir, tree, ignore=shutil.ignore_patterns(*NOT_COPIED), symlinks=True)
            out.mkdir()
            rel = spec.search_space.file
            (tree / rel).write_text(set_values(config_text(tree, rel), rel, values))
            command = fill(spec.train.command, {"data": self._visible, "out": out, "tree": tree, "seed": "0"},
                           "train.command")
            proc = run_trusted(command, tree, spec.train.timeout, "train.command")
            if proc.returncode != 0:
                tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
                return Eval(metrics={}, test=float("nan"), per_example=[], timed_out=isinstance(proc, TimedOut),
                            failure=f"train.command exited {proc.returncode}: " + " | ".join(tail))
            held = score(spec, self.dir, data, out, scores)
            if not held.ok:
                return Eval(metrics={}, test=float("nan"), per_example=[], failure=held.reason)
            per_example, _ = load_per_example(scores / PER_EXAMPLE_FILE)
            test = score_test(spec, self.dir, data, out, Path(tmp, "test-scores"))
            if test is None or not test.ok:
                return Eval(metrics={}, test=float("nan"), per_example=[],
                            failure=test.reason if test is not None else "no test scorer")
        return Eval(metrics=held.metrics, test=test.metrics[f"test_{metric}"],
                    per_example=[] if per_example is None else [float(v) for v in per_example])


TASKS: dict[str, type[Task]] = {"digits": Digits, "tabular": Tabular}


def load_task(name: str, cache: Optional[Path] = None) -> Task:
    """A bundled task by its name, or a task repository by its path (``RepoTask``)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if name in TASKS:
        return TASKS[name](cache)
    return RepoTask(Path(name), cache)
