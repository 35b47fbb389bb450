"""A run's lineage read back: every candidate's record, from the git notes (so that a clone of
the lineage with no run directory reads the same) and from the run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from pydantic import BaseModel

from progenitor.candidate import Candidate, CandidateKey, Champion
from progenitor.candidate.keys import base_ref, candidate_name, champion_ref
from progenitor.errors import UserError
from progenitor.lineage.git import Lineage
from progenitor.run.rundir import find_run, read_json
from progenitor.run.status import RunStatus, status_of

__all__ = ["RunLineage", "read_lineage", "run_detail"]


class RunLineage(BaseModel):
    """A run's lineage: where it started, its champion now, the human baseline's numbers, and
    every candidate of every generation (rejected and failed ones too), in key order."""

    run: str
    repo: str
    base: Optional[str] = None
    """The commit the run started from (``refs/progenitor/<run>/base``)."""
    champion: Optional[str] = None
    """The champion's commit now (``refs/progenitor/<run>/champion``)."""
    baseline: Optional[Champion] = None
    """The human baseline as scored (from the run directory; None in a clone of the lineage alone)."""
    candidates: list[Candidate] = []

    def candidate(self, gen: int, k: int) -> Optional[Candidate]:
        return next((c for c in self.candidates if (c.gen, c.k) == (gen, k)), None)

    def promoted(self) -> list[Candidate]:
        """The candidates whose promotion stands (a reverted one is not), oldest first."""
        return [c for c in self.candidates if c.decision is not None and c.decision.verdict == "promoted"]


def read_lineage(run_id: str, repo: Optional[Path] = None) -> RunLineage:
    """Every candidate of a run with its record, plus base and champion.

    Records come from the git notes (so a clone of the lineage, with no run directory, reads
    the same), and from the run directory for proposals that never became a commit. Records
    of any schema are read (``Candidate.from_record``)."""
    try:
        run = find_run(run_id, repo)
        root, meta = run.repo_root, run.meta
    except UserError:
        root = Path(repo) if repo else Path.cwd()
        if not Lineage(root).refs(run_id):
            raise
        run, meta = None, {}
    git = Lineage(root)
    refs = git.refs(run_id)
    candidates: dict[tuple[int, int], Candidate] = {}
    for ref, sha in refs.items():
        try:
            key = CandidateKey.parse(ref)
        except ValueError:
            continue  # base, champion
        note = git.read_note(sha)
        if note:
            candidates[(key.gen, key.k)] = Candidate.from_record(note).model_copy(update={"sha": sha, "ref": ref})
    if run is not None:
        # A proposal the coder could not commit has no commit to carry a note: its record lives
        # in the run directory only. So does a record not final yet (the run is under way).
        for path in run.records():
            cand = Candidate.from_record(read_json(path) or {})
            if (cand.gen, cand.k) not in candidates:
                candidates[(cand.gen, cand.k)] = cand
    return RunLineage(run=run_id, repo=str(root), base=refs.get(base_ref(run_id)),
                      champion=refs.get(champion_ref(run_id)), baseline=meta.get("baseline"),
                      candidates=[candidates[key] for key in sorted(candidates)])


def run_detail(run_id: str, repo: Optional[Path] = None) -> RunStatus:
    """One run's status with what ``progenitor status RUN`` shows beside it, read from the
    lineage so that it holds mid-run and after a revert: the champion now (its candidate,
    commit and values) and the candidates so far by status."""
    status = status_of(find_run(run_id, repo))
    lineage = read_lineage(run_id, Path(status.repo))
    counts: dict[str, int] = {}
    for cand in lineage.candidates:
        counts[cand.status] = counts.get(cand.status, 0) + 1
    update: dict = {"counts": counts, "champion_commit": lineage.champion}
    metric = status.metric
    if lineage.champion is not None and lineage.champion == lineage.base:
        baseline = lineage.baseline
        update.update(champion_name="baseline", champion_value=status.baseline_value,
                      champion_test_value=baseline.test_metrics.get(f"test_{metric}") if baseline else None)
    elif lineage.champion is not None:
        held = [c for c in lineage.candidates if c.sha == lineage.champion]
        if held:
            update.update(champion_name=candidate_name(held[-1].gen, held[-1].k),
                          champion_value=held[-1].metrics.get(metric, status.champion_value),
                          champion_test_value=held[-1].test_metrics.get(f"test_{metric}"))
    return status.model_copy(update=update)
