"""select, oversight and promote, node by node, on hand-made states: no training, no sandbox,
milliseconds each. The state holds ``Candidate`` records, as the graph's does."""

from __future__ import annotations

import pytest

from progenitor.agents.safety import Finding
from progenitor.candidate import Candidate, Champion, Proposal
from progenitor.lineage import Lineage, champion_ref
from progenitor.options import RunOptions
from progenitor.oversight.audit import AuditLog
from progenitor.run.rundir import RunDir
from progenitor.task.spec import load_spec
from progenitor.testing import ScriptedArchitect, make_repo, toy_task_files
from progenitor.workflows import selection
from progenitor.workflows.state import RunContext, State


@pytest.fixture
def ctx(tmp_path):
    files = toy_task_files(generations=2)
    repo = make_repo(tmp_path / "repo", files)
    run = RunDir(repo, "r20260101-0001")
    run.create({"repo": str(repo)})
    architect = ScriptedArchitect([[]])
    return RunContext(run=run, lineage=Lineage(repo), spec=load_spec(repo), options=RunOptions(executor="local"),
                      backend="process", backend_options={}, audit=AuditLog(tmp_path / "audit.jsonl"),
                      factories={"architect": lambda _: architect})


def scored(ctx: RunContext, k: int, error: float, params: float = 1, **changes) -> Candidate:
    head = ctx.lineage.head()
    cand = Candidate.new(Proposal(gen=1, k=k, hypothesis=f"c{k}"), ctx.run.run_id, head, "error")
    sha = ctx.lineage.commit_candidate(cand.ref, head, lambda tree: (tree / f"c{k}.txt").write_text(f"{k}\n"))
    cand = cand.advance("committed", sha=sha).advance("reviewed").advance("trained")
    return cand.advance("scored", metrics={"error": error, "params": params}).with_(**changes)


def state(ctx: RunContext, cands: list[Candidate], champion_error: float = 3.0, **more) -> State:
    champion = Champion(sha=ctx.lineage.head(), metrics={"error": champion_error, "params": 1})
    return State(**{"generation": 1, "baseline": champion, "champion": champion, "candidates": cands, **more})


def then(s: State, update) -> State:
    """The state after a node's update, as the graph keeps it (through its JSON)."""
    return State.of({**s.model_dump(mode="json", by_alias=True), **update.to_json()})


def test_select_ranks_by_the_objective_and_leaves_out_a_broken_guard(ctx):
    cands = [scored(ctx, 0, 0.5), scored(ctx, 1, 0.1, params=50), scored(ctx, 2, 0.9)]
    update = selection.select(ctx, state(ctx, cands))
    assert update.selection.k == 0 and update.selection.improves
    guarded = update.candidates[1]
    assert guarded.guard_failed and "params" in guarded.guard_failed
    assert [f.rule for f in guarded.findings] == ["guard"]


def test_select_says_when_the_best_does_not_beat_the_champion(ctx):
    update = selection.select(ctx, state(ctx, [scored(ctx, 0, 3.5)]))
    assert update.selection.k == 0 and not update.selection.improves
    assert selection.select(ctx, state(ctx, [])).selection is None


@pytest.mark.parametrize("error, findings, action", [
    (0.5, [], "approve"),
    (3.5, [], "keep"),
    (0.5, [Finding(rule="capability-jump", severity="high", message="too good", escalate=True)], "escalate"),
])
def test_oversight_decides_by_policy_and_records_it_once(ctx, error, findings, action):
    cands = [scored(ctx, 0, error, findings=findings)]
    s = state(ctx, cands)
    s = then(s, selection.select(ctx, s))
    first = selection.oversight(ctx, s).decision
    assert first.action == action and first.actor == "policy:auto"
    again = selection.oversight(ctx, s).decision  # a resumed run replays the node
    assert again.audit_seq == first.audit_seq
    decisions = [e for e in ctx.audit.entries() if e["key"].endswith("/decision")]
    assert len(decisions) == 1 and decisions[0]["action"] == action and decisions[0]["commit"] == cands[0].sha
    assert ctx.audit.verify().ok


def test_promote_moves_the_champion_finishes_every_record_and_tells_the_architect(ctx):
    unfinished = scored(ctx, 1, 0.2).model_copy(update={"status": "reviewed", "metrics": {}})
    cands = [scored(ctx, 0, 0.5), unfinished]
    s = state(ctx, cands)
    s = then(s, selection.select(ctx, s))
    s = then(s, selection.oversight(ctx, s))
    update = selection.promote(ctx, s)
    assert update.champion.k == 0
    assert ctx.lineage.resolve(champion_ref(ctx.run.run_id)) == cands[0].sha
    final = update.candidates
    assert [c.status for c in final] == ["scored", "failed"]
    assert final[0].decision.verdict == "promoted" and final[1].reason == "its reviewed work never finished"
    assert ctx.lineage.read_note(cands[0].sha)["decision"]["verdict"] == "promoted"
    assert ctx.lineage.read_note(cands[1].sha)["decision"]["verdict"] == "failed"
    assert [(p.k, o.status) for p, o in ctx.architect.observed] == [(0, "scored"), (1, "failed")]
    assert update.generation == 2 and update.stop_reason is None
    assert update.history[0].promoted == 0 and update.history[0].counts == {"scored": 1, "failed": 1}


def test_promote_without_a_decision_keeps_the_champion_and_ends_at_the_budget(ctx):
    rejected = Candidate.new(Proposal(gen=2, k=0, hypothesis="bad"), ctx.run.run_id, ctx.lineage.head(), "error")
    rejected = rejected.advance("committed", sha=ctx.lineage.head()).advance("rejected", reason="protected path")
    s = state(ctx, [rejected], generation=2, decision=None)
    update = selection.promote(ctx, s)
    assert update.champion == s.champion
    assert update.stop_reason == "budget: 2 generations done"
    assert update.candidates[0].decision.verdict == "rejected"


class _Finds:
    name = "static"

    def __init__(self, severity):
        self.severity = severity

    def review(self, change):
        return [Finding(rule="fake", severity=self.severity, message=f"a {self.severity} finding")]


class _Spent:
    name = "llm"

    def review(self, change):
        from progenitor.errors import LlmBudgetSpent

        raise LlmBudgetSpent("budget reached: 2.0 of 2 LLM dollars spent")


@pytest.mark.parametrize("severity, status", [("high", "rejected"), ("low", "budget")])
def test_a_budget_spent_mid_review_does_not_hide_what_the_review_found_already(ctx, severity, status):
    """A blocker the static review found rejects the candidate whatever the LLM reviewer's budget
    says; without one, the spent budget is the candidate's status (not a rejection)."""
    from progenitor.workflows import nodes

    head = ctx.lineage.head()
    ctx.lineage.export(head, ctx.run.trusted)
    ctx._agents["reviewers"] = [_Finds(severity), _Spent()]
    cand = Candidate.new(Proposal(gen=1, k=0, hypothesis="c0"), ctx.run.run_id, head, "error")
    sha = ctx.lineage.commit_candidate(cand.ref, head, lambda tree: (tree / "c0.txt").write_text("0\n"))
    reviewed = nodes._review(ctx, cand.advance("committed", sha=sha), head)
    assert reviewed.status == status, reviewed.reason
    assert [f.rule for f in reviewed.findings] == ["fake"]
    assert reviewed.reason.startswith("rejected by the safety review: a high finding" if status == "rejected"
                                      else "not reviewed by the llm reviewer: budget reached")
