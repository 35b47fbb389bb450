"""The lineage as the architect node reads it: the node each candidate is built on
(``search.parents``), this run's journal, and the journal of the runs before it.

Parents are drawn once per generation, before the architect is asked, and kept in
``g<gen>/parents.json``: a resume builds on the same nodes. ``archive`` draws each candidate's
parent with ``agents.architect.parents.choose`` (one candidate at a time, the children handed
out so far counted), ``champion`` gives every candidate the champion.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from progenitor.agents.architect import parents as rule
from progenitor.agents.base import JournalEntry, Parent
from progenitor.candidate import Candidate, Champion
from progenitor.candidate.keys import candidate_name
from progenitor.run.rundir import read_json, write_json
from progenitor.workflows.state import RunContext, State

__all__ = ["EARLIER_ENTRIES", "built_on", "earlier_runs", "journal", "node_of", "parents_for", "records"]

EARLIER_ENTRIES = 48
"""The most candidates of earlier runs handed to the architect (the newest); older ones are left out."""


def records(ctx: RunContext, before: Optional[int] = None) -> list[Candidate]:
    """This run's candidate records so far (of the generations before ``before``), oldest first."""
    out = []
    for path in ctx.run.records():
        cand = Candidate.from_record(read_json(path))
        if 0 < cand.gen and (before is None or cand.gen < before):
            out.append(cand)
    return out


def node_of(champion: Champion, metric: str) -> Parent:
    """A champion (the baseline included) as a node of the lineage."""
    return Parent(name=candidate_name(champion.gen, champion.k), sha=champion.sha, value=champion.metrics.get(metric),
                  params=dict(champion.params), metrics=dict(champion.metrics))


def parents_for(ctx: RunContext, state: State, gen: int, count: int) -> list[Parent]:
    """The node each of the generation's ``count`` candidates builds on (drawn once, then read)."""
    saved = read_json(ctx.run.parents(gen))
    if saved is not None and len(saved) >= count:
        return [Parent.model_validate(p) for p in saved]
    metric = ctx.spec.objective.metric
    champion = node_of(state.champion, metric)
    if ctx.spec.search.parents == "champion":
        chosen = [champion] * count
    else:
        debug = bool(getattr(ctx.architect, "debugs", False))
        baseline = node_of(state.baseline or state.champion, metric)  # async: the baseline may still train
        nodes = rule.nodes_of(baseline, records(ctx, before=gen), debug=debug)
        chosen = []
        for k in range(count):
            node = rule.choose(nodes, ctx.spec.objective.goal, ctx.agent_context().seed, gen, k)
            chosen.append(node)
            nodes = [n.model_copy(update={"children": n.children + 1}) if n.sha == node.sha else n for n in nodes]
    write_json(ctx.run.parents(gen), [p.model_dump() for p in chosen])
    return chosen


def params_of(ctx: RunContext, state: State, sha: str) -> dict:
    """The search-space values of the node at ``sha``: the champion's, the baseline's, or a
    candidate's (from its record)."""
    for champion in (state.champion, state.baseline):
        if champion is not None and champion.sha == sha:
            return dict(champion.params)
    found = next((c for c in records(ctx) if c.sha == sha), None)
    return dict(found.params) if found is not None else dict(state.champion.params)


def built_on(cand: Candidate, cands: list[Candidate]) -> str:
    """The commit a candidate's change is judged against: its parent, or, for a crash fix (whose
    commit's parent is the crashed candidate), the crashed candidate's parent."""
    if cand.fix_of is not None:
        crashed = next((c for c in cands if c.k == cand.fix_of), None)
        if crashed is not None and crashed.parent:
            return crashed.parent
    return cand.parent


def entry(cand: Candidate, run: str = "") -> JournalEntry:
    """One candidate as the architect reads it."""
    return JournalEntry(
        gen=cand.gen, k=cand.k, run=run, status=cand.status, hypothesis=cand.proposal.hypothesis,
        plan=cand.proposal.plan, params=cand.proposal.params, value=cand.value, reason=cand.reason,
        verdict=cand.decision.verdict if cand.decision else "", fix_of=cand.fix_of, parent=cand.parent_name,
        findings=[f"{f.rule} ({f.severity}): {f.message}" for f in cand.findings], lesson=cand.lesson,
        metrics=cand.metrics, train_seconds=cand.train.duration if cand.train is not None else None,
    )


def journal(ctx: RunContext, before: int) -> list[JournalEntry]:
    """Every candidate of the generations before ``before``, from their records, oldest first."""
    return [entry(c) for c in records(ctx, before=before)]


def earlier_runs(ctx: RunContext, limit: int = EARLIER_ENTRIES) -> list[JournalEntry]:
    """The candidates of the runs before this one on this repository, with their lessons, read
    from the git notes (so a clone of the lineage reads the same); the newest ``limit``."""
    if not ctx.spec.search.earlier_runs:
        return []
    from progenitor.lineage.records import read_lineage

    this = ctx.run.run_id
    out: list[JournalEntry] = []
    for run in _runs_before(ctx.lineage.runs(), this, ctx.run.repo_root):
        try:
            lineage = read_lineage(run, ctx.run.repo_root)
        except Exception:  # noqa: BLE001 - an unreadable old run is left out, not a failed run
            continue
        out += [entry(c, run) for c in lineage.candidates if c.gen > 0 and c.final]
    return out[-limit:]


def _runs_before(runs: list[str], this: str, repo: Path) -> list[str]:
    """The runs other than ``this`` that have candidates, oldest first (by their first candidate's commit)."""
    from progenitor.candidate.keys import CandidateKey
    from progenitor.lineage import Lineage

    git = Lineage(repo).git
    started = {}
    for run in runs:
        if run in (this, "audit"):
            continue
        times = []
        for line in git.for_each_ref("--format=%(committerdate:unix) %(refname)", f"refs/progenitor/{run}/").splitlines():
            when, _, ref = line.partition(" ")
            try:
                CandidateKey.parse(ref)
            except ValueError:
                continue  # base, champion
            times.append(int(when))
        if times:
            started[run] = (min(times), run)
    return sorted(started, key=started.get)
