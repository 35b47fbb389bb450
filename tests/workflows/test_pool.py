"""The candidate pool on a real local executor and the process sandbox: a candidate is scored
the moment its training ends, while a slower one still trains, and the slots are recorded."""

from __future__ import annotations

import threading
import time

import pytest

from progenitor.candidate.keys import CandidateKey
from progenitor.compute import get_executor
from progenitor.evaluation.scorer import Score
from progenitor.lineage import Lineage
from progenitor.options import RunOptions
from progenitor.oversight.audit import AuditLog
from progenitor.run.events import TrainEnd
from progenitor.run.ledger import Ledger
from progenitor.run.rundir import RunDir
from progenitor.task.spec import load_spec
from progenitor.testing import make_repo, toy_task_files
from progenitor.workflows.pool import CandidatePool
from progenitor.workflows.state import RunContext

pytestmark = pytest.mark.loop  # runs the loop or a sandbox end to end: `make test` runs it, `make test-fast` does not

SLEEPER = """import argparse, os, time, yaml
p = argparse.ArgumentParser(); p.add_argument("--data"); p.add_argument("--out"); a = p.parse_args()
time.sleep(float(yaml.safe_load(open("config.yaml"))["sleep"]))
open(os.path.join(a.out, "done"), "w").write("ok")
"""


def _ctx(tmp_path) -> RunContext:
    files = {**toy_task_files(), "train.py": SLEEPER, "config.yaml": "w: 1.0\nsleep: 0\n"}
    repo = make_repo(tmp_path / "repo", files)
    run = RunDir(repo, "r20260101-0001")
    run.create({"repo": str(repo)})
    run.visible.mkdir(parents=True, exist_ok=True)
    ctx = RunContext(run=run, lineage=Lineage(repo), spec=load_spec(repo), options=RunOptions(executor="local"),
                     backend="process", backend_options={}, audit=AuditLog(tmp_path / "audit.jsonl"))
    ctx.executor = get_executor("local", run.visible, max_parallel=2)
    ctx.ledger = Ledger(run.ledger)
    return ctx


def _commit(ctx: RunContext, k: int, sleep: float) -> tuple[CandidateKey, str]:
    key = CandidateKey(run=ctx.run.run_id, gen=1, k=k)
    sha = ctx.lineage.commit_candidate(f"refs/progenitor/{key.run}/g1/c{k}", ctx.lineage.head(),
                                       lambda tree: (tree / "config.yaml").write_text(f"w: 1.0\nsleep: {sleep}\n"))
    return key, sha


def test_a_candidate_is_scored_while_a_slower_one_still_trains(tmp_path):
    ctx = _ctx(tmp_path)
    seen: list[tuple[str, str, float]] = []
    lock = threading.Lock()

    def note(kind: str, name: str) -> None:
        with lock:
            seen.append((kind, name, time.monotonic()))

    ctx.listeners.append(lambda e: note("trained", f"c{e.k}") if isinstance(e, TrainEnd) else None)

    def score(_ctx, key: CandidateKey, split: str, _seed: int = 0) -> Score:
        note("scored", key.name.split("/")[-1])
        return Score(ok=True, metrics={"error": 1.0})

    pool = CandidatePool(ctx, score)
    try:
        items = [_commit(ctx, 0, 0.0), _commit(ctx, 1, 6.0)]
        for key, sha in items:
            pool.submit(key, sha)
        entries = pool.wait_done([key for key, _ in items])
        pool.check()
    finally:
        pool.close()
        ctx.executor.close()
    assert all(e.record is not None and e.record.status == "ok" and "holdout" in e.scores for e in entries.values())
    when = {(kind, name): t for kind, name, t in seen}
    # the quick one was scored before the slow one's training ended: no barrier before scoring
    assert when[("scored", "c0")] < when[("trained", "c1")]
    assert ctx.ledger.data.slots == 2
    # both trainings overlapped on the two slots: their spans on the run's clock are recorded
    attempts = [a for c in ctx.ledger.data.candidates.values() for a in c.attempts]
    assert len(attempts) == 2 and all(a.ended is not None for a in attempts)
