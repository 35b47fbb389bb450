"""A run's lineage read back: every candidate's record, from the git notes (so that a clone of
the lineage with no run directory reads the same) and from the run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from progenitor.candidate import Candidate, CandidateKey
from progenitor.candidate.keys import base_ref, candidate_name, champion_ref
from progenitor.errors import UserError
from progenitor.lineage.git import Lineage
from progenitor.run.rundir import find_run, read_json

__all__ = ["read_lineage", "run_overview"]


def read_lineage(run_id: str, repo: Optional[Path] = None) -> dict:
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
    return {
        "run": run_id, "repo": str(root), "base": refs.get(base_ref(run_id)),
        "champion": refs.get(champion_ref(run_id)), "baseline": meta.get("baseline"),
        "candidates": [candidates[key].record() for key in sorted(candidates)],
    }


def run_overview(run_id: str, repo: Optional[Path] = None) -> dict:
    """What ``progenitor status RUN`` shows beside the run's own file: the objective, the
    budget of generations, and the champion so far (its candidate, commit and values), read
    from the task at the run's base commit and from the lineage, so that it holds mid-run."""
    run = find_run(run_id, repo)
    meta, git = run.meta, Lineage(run.repo_root)
    overview: dict = {"metric": None, "goal": None, "generations_budget": None, "champion": None, "counts": {}}
    if meta.get("base"):
        spec = git.spec_at(meta["base"])
        generations = (meta.get("options") or {}).get("generations") or spec.budget.generations
        overview.update(metric=spec.objective.metric, goal=spec.objective.goal, generations_budget=generations)
    lineage = read_lineage(run_id, run.repo_root)
    for c in lineage["candidates"]:
        overview["counts"][c.get("status", "?")] = overview["counts"].get(c.get("status", "?"), 0) + 1
    champion = lineage["champion"]
    if champion is None:
        return overview
    if champion == lineage["base"]:
        baseline = lineage["baseline"] or {}
        overview["champion"] = {"name": "baseline", "sha": champion, "metrics": baseline.get("metrics", {}),
                                "test_metrics": baseline.get("test_metrics", {})}
    else:
        record = next((c for c in reversed(lineage["candidates"]) if c.get("sha") == champion), {})
        name = candidate_name(record["gen"], record["k"]) if record else "?"
        overview["champion"] = {"name": name, "sha": champion, "metrics": record.get("metrics") or {},
                                "test_metrics": record.get("test_metrics") or {}}
    return overview
