"""``evaluate: model``: score a candidate by running its own model, sealed, and measuring outside.

Training left weights (safetensors) in the candidate's outputs. Here, on the driver:

1. the weights' headers are parsed and counted (``safetensors_header``): ``params`` and
   ``weights_bytes`` are progenitor's measurements, not the candidate's word;
2. a **scoring sandbox** (the training backend, limits and disk quota; no network; the
   candidate's tree read-only; a fresh outputs directory that is thrown away) runs the trusted
   harness (``harness.py``, copied in), which calls the candidate's predict entry point on the
   split's *inputs* in batches: copies of the weight files, tensors only (no ``__metadata__``),
   are the only outputs of training it sees;
3. the raw outputs come back as one ``.npy`` array, read by a bounded parser that checks shape,
   dtype and finiteness (``npy_channel``); for a next-token objective the windows, the
   causality probe and the log-softmax are ``causality``'s;
4. the checked array is written by progenitor to the candidate's run directory and the task's
   trusted scorer command reads it as ``{outputs}``, with the labels, outside every sandbox.

No process that holds labels runs candidate code or reads a candidate file other than the two
formats parsed here. The wall and CPU seconds of the scoring sandboxes are measured here too
(``eval_seconds``, ``eval_cpu_seconds``).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import numpy as np
from pydantic import BaseModel, ConfigDict

from progenitor.errors import CandidateError, ProgenitorError
from progenitor.evaluation import causality, harness
from progenitor.evaluation.npy_channel import read_outputs
from progenitor.evaluation.safetensors_header import WeightsInfo, tensors_only_copy, weights_info
from progenitor.evaluation.scorer import Score, last_lines, run_scorer_command, scores_dir
from progenitor.task.spec import ModelEval, TaskSpec

__all__ = ["ScoringSandbox", "measured", "score_model"]

MAX_VOCABULARY = 1 << 20
COMMAND = "python {data}/harness.py {data} {out}"


class ScoringSandbox(BaseModel):
    """Where scoring sandboxes run: the run's training backend."""

    model_config = ConfigDict(extra="forbid")

    backend: str = "process"
    options: dict = {}
    labels: dict[str, str] = {}


class _Run(BaseModel):
    """What one scoring sandbox gave back."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    outputs: Optional[np.ndarray] = None
    reason: str = ""
    log: str = ""
    seconds: float = 0.0
    cpu_seconds: float = 0.0


def measured(info: WeightsInfo, seconds: float, cpu_seconds: float) -> dict[str, float]:
    """The metrics progenitor measures itself; they win over any a scorer prints of the same name."""
    return {"params": float(info.params), "weights_bytes": float(info.weights_bytes),
            "eval_seconds": round(seconds, 3), "eval_cpu_seconds": round(cpu_seconds, 3)}


def score_model(spec: TaskSpec, split: str, trusted: Path, data: Path, out: Path, tree_archive: bytes, keep: Path,
                sandbox: ScoringSandbox, scores: Optional[Path] = None) -> Score:
    """Score the model a candidate's training left in ``out`` on ``split`` (holdout or test);
    the checked outputs are kept in ``keep``; ``scores``: ``{scores}`` (per-example scores)."""
    predict = spec.predict
    assert predict is not None, "score_model needs evaluate: model"
    began = time.monotonic()
    try:
        paths = [_artifact(out, name) for name in predict.artifacts]
        info = weights_info(paths)
        values, runs = _evaluate(spec, predict, split, data, paths, tree_archive, sandbox)
    except CandidateError as exc:
        return Score(ok=False, reason=f"evaluate: model: {exc}")
    except _Failed as failed:
        return Score(ok=False, reason=failed.reason, log=failed.log)
    keep.mkdir(parents=True, exist_ok=True)
    outputs = keep / f"{split}_outputs.npy"
    np.save(outputs, values, allow_pickle=False)
    template = spec.scorer.command if split == "holdout" else spec.scorer.test.command  # type: ignore[union-attr]
    field = "scorer.command" if split == "holdout" else "scorer.test.command"
    result = run_scorer_command(spec, template, {"data": data, "outputs": outputs, "scores": scores_dir(scores)},
                                trusted, field)
    logs = "\n".join(r.log for r in runs if r.log)
    own = measured(info, time.monotonic() - began, sum(r.cpu_seconds for r in runs))
    return result.model_copy(update={"metrics": {**result.metrics, **own} if result.ok else result.metrics,
                                     "log": "\n".join(x for x in (logs, result.log) if x)})


class _Failed(Exception):
    def __init__(self, reason: str, log: str = ""):
        super().__init__(reason)
        self.reason, self.log = reason, log


def _artifact(out: Path, name: str) -> Path:
    path = out / name
    if not path.is_file() or path.is_symlink():
        raise CandidateError(f"training wrote no {name} to its outputs (predict.artifacts)")
    return path


def _inputs(spec: TaskSpec, predict: ModelEval, split: str, data: Path) -> np.ndarray:
    """The split's inputs (trusted data, written by the task's prepare)."""
    name = predict.inputs if split == "holdout" else spec.data.test.inputs  # type: ignore[union-attr]
    try:
        return np.load(data / name, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ProgenitorError(f"the {split} inputs {name} could not be read: {exc}") from None


def _evaluate(spec: TaskSpec, predict: ModelEval, split: str, data: Path, artifacts: list[Path], tree_archive: bytes,
              sandbox: ScoringSandbox) -> tuple[np.ndarray, list["_Run"]]:
    """(the array the scorer reads, the sandbox runs)."""
    inputs = _inputs(spec, predict, split, data)
    seq = predict.sequence
    if seq is None:
        [run] = _run_all(spec, [inputs], artifacts, tree_archive, sandbox, keep="all", ndim=(1, 2, 3, 4))
        return run.outputs, [run]  # type: ignore[return-value]
    tokens = np.asarray(inputs).reshape(-1)
    windows, targets = causality.windows(tokens.astype(np.int64), seq.context)
    if len(windows) == 0:
        raise ProgenitorError(f"the {split} stream has {len(tokens)} tokens, fewer than one window of {seq.context}")
    if seq.positions == "last":
        [run] = _run_all(spec, [windows], artifacts, tree_archive, sandbox, keep="last", ndim=(2,))
        _vocabulary(run.outputs, targets)
        return causality.target_logprobs(run.outputs, targets[:, -1]), [run]
    feeds, probes = causality.plan_runs(windows, seq.probes, spec.seed)
    runs = _run_all(spec, [f.rows for f in feeds], artifacts, tree_archive, sandbox, keep="all", ndim=(3,),
                    width=seq.context)
    real, probe_outputs = _assemble(feeds, runs, len(windows), len(probes))
    _vocabulary(real, targets)
    worst, moved = causality.check_probes(real, probe_outputs, probes, seq.tolerance)
    if worst is not None:
        raise _Failed(f"causality: {moved} of {len(probes)} probe windows changed the outputs at positions they must "
                      f"not affect (the worst by {worst.change:.3g} nats at position {worst.position}, the text after "
                      f"position {worst.probe.j} having been replaced): the model reads ahead")
    return causality.target_logprobs(real, targets).reshape(-1), runs


def _vocabulary(outputs: np.ndarray, targets: np.ndarray) -> None:
    size = outputs.shape[-1]
    if size > MAX_VOCABULARY or size <= int(targets.max()):
        raise CandidateError(f"the outputs have {size} entries per position, but token ids go up to "
                             f"{int(targets.max())} (at most {MAX_VOCABULARY})")


def _assemble(feeds: list[causality.RunFeed], runs: list[_Run], n: int, probes: int
              ) -> tuple[np.ndarray, list[np.ndarray]]:
    """The real windows' outputs in order, and each probe's."""
    first = runs[0].outputs
    assert first is not None
    real = np.empty((n, *first.shape[1:]), dtype=first.dtype)
    probe_outputs: list[Optional[np.ndarray]] = [None] * probes
    for feed, run in zip(feeds, runs):
        assert run.outputs is not None
        if run.outputs.shape[1:] != first.shape[1:]:
            raise CandidateError(f"the scoring sandboxes returned outputs of shapes {first.shape[1:]} and "
                                 f"{run.outputs.shape[1:]}")
        is_real = feed.origin >= 0
        real[feed.origin[is_real]] = run.outputs[is_real]
        for row in np.flatnonzero(~is_real):
            probe_outputs[-1 - int(feed.origin[row])] = run.outputs[row]
    return real, [p for p in probe_outputs if p is not None]


def _run_all(spec: TaskSpec, feeds: list[np.ndarray], artifacts: list[Path], tree_archive: bytes,
             sandbox: ScoringSandbox, keep: str, ndim: tuple[int, ...], width: Optional[int] = None) -> list[_Run]:
    """One scoring sandbox per feed, at the same time (they share nothing), each checked."""
    with ThreadPoolExecutor(max_workers=len(feeds)) as pool:
        runs = list(pool.map(lambda i: _run_one(spec, feeds[i], i, artifacts, tree_archive, sandbox, keep, ndim,
                                                width), range(len(feeds))))
    for run in runs:
        if run.reason:
            raise _Failed(run.reason, run.log)
    return runs


def _run_one(spec: TaskSpec, rows: np.ndarray, index: int, artifacts: list[Path], tree_archive: bytes,
             sandbox: ScoringSandbox, keep: str, ndim: tuple[int, ...], width: Optional[int]) -> _Run:
    from progenitor.compute.base import unpack
    from progenitor.compute.jobdir import daemon_shares_our_mounts, job_dir
    from progenitor.compute.jobs import limits_for
    from progenitor.sandbox import get_sandbox
    from progenitor.sandbox.base import SandboxSpec

    predict = spec.predict
    assert predict is not None
    limits = limits_for(spec).model_copy(update={"wall_time": predict.timeout})
    feed = Path(tempfile.mkdtemp(prefix="progenitor-feed-"))
    try:
        _write_feed(feed, rows, artifacts, predict, keep)
        tmpfs = sandbox.backend != "docker" or daemon_shares_our_mounts("dockerd")
        with job_dir(None, limits.disk_bytes, spec.train.resources.files, tmpfs=tmpfs) as jd:
            unpack(tree_archive, jd.tree)
            box = get_sandbox(sandbox.backend, **sandbox.options).run(SandboxSpec(
                command=COMMAND, tree=jd.tree, out=jd.out, data=feed, read_only_tree=True, limits=limits,
                labels={**sandbox.labels, "scoring": str(index)}))
            run = _Run(log=last_lines(box.stdout + "\n" + box.stderr), seconds=box.duration,
                       cpu_seconds=box.cpu_seconds)
            if not box.ok:
                return run.model_copy(update={"reason": _why(box, predict)})
            try:
                outputs = read_outputs(jd.out / "outputs.npy", len(rows), ndim, limits.disk_bytes or 1 << 32,
                                       width=width)
            except CandidateError as exc:
                return run.model_copy(update={"reason": f"evaluate: model: {exc}"})
            return run.model_copy(update={"outputs": np.array(outputs)})
    finally:
        shutil.rmtree(feed, ignore_errors=True)


def _write_feed(feed: Path, rows: np.ndarray, artifacts: list[Path], predict: ModelEval, keep: str) -> None:
    """What the sandbox reads: the harness, its plan, the inputs and copies of the weight files."""
    import json

    shutil.copyfile(harness.__file__, feed / "harness.py")
    plan = {"module_file": predict.module_file, "function": predict.function, "batch_size": predict.batch_size,
            "keep": keep}
    (feed / "plan.json").write_text(json.dumps(plan))
    np.save(feed / "inputs.npy", np.ascontiguousarray(rows), allow_pickle=False)
    (feed / "artifacts").mkdir()
    for path in artifacts:  # the counted tensors, and nothing else of the candidate's outputs
        tensors_only_copy(path, feed / "artifacts" / path.name)


def _why(box, predict: ModelEval) -> str:
    """One sentence for a scoring sandbox that did not finish well."""
    said = [line[len("harness: "):] for line in box.stderr.splitlines() if line.startswith("harness: ")]
    if box.status == "timeout":
        return f"evaluate: model: the scoring sandbox timed out after {predict.timeout:g} s (predict.timeout)"
    if said and box.status == "failed":
        return f"evaluate: model: {said[-1][:300]}"
    return (f"evaluate: model: the scoring sandbox ended with {box.status} ({box.reason or f'exit {box.exit_code}'}); "
            f"{last_lines(box.stdout + chr(10) + box.stderr, 3)}")
