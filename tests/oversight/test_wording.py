"""What a record and the summary say in the cases that read wrong before: a tie is a tie (not a
lower rank), and a guarded metric that did not move is "unchanged from the baseline"."""

from __future__ import annotations

import io

from rich.console import Console

from progenitor.candidate import Candidate, Proposal
from progenitor.oversight.policy import PolicyDecision, candidate_decision


def _scored(k: int, value: float) -> Candidate:
    cand = Candidate.new(Proposal(gen=1, k=k, hypothesis="h"), "r1", "a" * 40, "accuracy")
    return cand.model_copy(update={"status": "scored", "metrics": {"accuracy": value}})


def test_a_tie_is_reported_as_a_tie_and_a_lower_rank_names_the_winner():
    decision = PolicyDecision(action="approve", k=0, actor="policy:auto", reason="improves")
    tied = candidate_decision(_scored(1, 0.95), decision, promoted=0, chosen_value=0.95)
    assert tied.reason == "tied with g1/c0 on accuracy, which was proposed first and chosen"
    lower = candidate_decision(_scored(2, 0.90), decision, promoted=0, chosen_value=0.95)
    assert lower.reason == "g1/c0 of its generation ranked higher"


def test_a_guard_that_did_not_move_reads_unchanged_from_the_baseline():
    from progenitor.cli.views import print_summary
    from progenitor.workflows.runner import RunSummary

    summary = RunSummary(run_id="r1", repo="/r", status="finished", metric="accuracy", goal="maximize",
                         champion_ref="refs/progenitor/r1/champion",
                         drift={"params": {"baseline": 3466, "champion": 3466, "change": 0, "allowed": None}})
    out = io.StringIO()
    print_summary(Console(file=out, width=200), summary)
    text = out.getvalue()
    assert "3466 -> 3466: unchanged from the baseline" in text and "unchanged than" not in text
