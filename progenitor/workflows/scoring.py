"""Scoring a trained candidate with the trusted scorer, on the driver next to the labels:
keyed by run / generation / candidate and split, written to ``score.json`` (or
``test_score.json``) when done, so that a resumed run looks a score up instead of scoring
again. The candidate pool (``workflows.pool``) calls it the moment a training ends."""

from __future__ import annotations

from pathlib import Path

from progenitor.candidate import Candidate
from progenitor.candidate.keys import CandidateKey
from progenitor.evaluation.scorer import Score, score, score_test
from progenitor.run.events import TestFailed
from progenitor.run.rundir import read_json, write_json
from progenitor.workflows.state import RunContext

__all__ = ["score_dir", "test_metrics"]


def score_dir(ctx: RunContext, key: CandidateKey, split: str = "holdout", seed: int = 0) -> Score:
    """Score one trained candidate with the trusted scorer, on the holdout or (for the baseline
    and promoted champions only) the test split; looked up if done before. ``seed``: one of its
    repeats (``objective.repeats``), holdout only."""
    if seed:
        where = ctx.run.repeat(key.gen, key.k, seed)
        path, out, scores = where / "score.json", where / "out", where / "scores"
    else:
        path, out = ctx.run.score_file(key.gen, key.k, split), ctx.run.outputs(key.gen, key.k)
        scores = ctx.run.scores(key.gen, key.k, split)
    done = read_json(path)
    if done is not None:
        return Score.model_validate(done)
    if ctx.spec.evaluate == "model":
        result = _score_model(ctx, key, split, out, scores, seed)
    else:
        measure = score if split == "holdout" else score_test
        result = measure(ctx.spec, ctx.run.trusted, ctx.run.data, out, scores)
    write_json(path, result.model_dump())
    return result


def _score_model(ctx: RunContext, key: CandidateKey, split: str, out: Path, scores: Path, seed: int = 0) -> Score:
    """``evaluate: model``: the candidate's predict function in a scoring sandbox of the run's
    backend, its outputs checked and scored outside (``evaluation.model_eval``)."""
    from progenitor.evaluation.model_eval import ScoringSandbox, score_model

    if key.gen == 0:
        sha = ctx.run.meta["base"]
    else:
        sha = Candidate.from_record(read_json(ctx.run.record_file(key.gen, key.k))).sha
    box = ScoringSandbox(backend=ctx.backend, options=ctx.backend_options,
                         labels={"run": key.run, "candidate": key.name, "commit": sha[:12]})
    keep = (ctx.run.repeat(key.gen, key.k, seed) if seed else ctx.run.candidate(key.gen, key.k)) / "scored"
    result = score_model(ctx.spec, split, ctx.run.trusted, ctx.run.data, out, ctx.lineage.archive(sha), keep, box,
                         scores)
    return result if split == "holdout" else result.model_copy(
        update={"metrics": {f"test_{k}": v for k, v in result.metrics.items()}})


def test_metrics(ctx: RunContext, key: CandidateKey) -> dict[str, float]:
    """A champion's figures on the test split ({} when the task has none, or they could not be had)."""
    if ctx.spec.scorer.test is None:
        return {}
    result = score_dir(ctx, key, split="test")
    if not result.ok:
        ctx.emit(TestFailed(gen=key.gen, k=key.k, reason=result.reason))
        return {}
    return result.metrics
