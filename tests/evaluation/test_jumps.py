"""Jumps on any scale: before the lineage has gains to judge a new one by, a gain is also judged
by its size against the baseline's own value (``oversight.max_relative_gain``), so that a loss
or a bits-per-character objective, nowhere near its perfect value, escalates a first step as
implausible as 3.53 -> 1.61; and a run in auto mode waits for a person there."""

from __future__ import annotations

import pytest

import progenitor
from progenitor.evaluation.after_scoring import check_jump
from progenitor.options import RunOptions
from progenitor.task.spec import parse_spec
from progenitor.testing import make_repo, scripted, toy_task_files
from tests.helpers.gating import OPTIONS


def spec(**oversight):
    return parse_spec({
        "name": "lm", "objective": {"metric": "bpc", "goal": "minimize"},
        "data": {"prepare": "true", "visible": ["x"]}, "train": {"command": "true"}, "scorer": {"command": "true"},
        "oversight": oversight,
    })


def test_the_issue_s_language_model_step_escalates_and_says_how_large_it_is():
    [jump] = check_jump(spec(), 1.609, [3.534])
    assert jump.rule == "capability-jump" and jump.escalate
    assert "54% of the baseline's 3.534" in jump.message and "oversight.max_relative_gain" in jump.message
    assert "times closer" not in jump.message, "rule 4 (closeness to 0 bits) alone never saw it"


@pytest.mark.parametrize("value, escalates", [(3.0, False), (2.2, False), (2.0, True), (1.767, True)])
def test_the_bound_is_a_fraction_of_the_baseline_s_own_value(value, escalates):
    # baseline 3.534: 0.4 of it is 1.41, so 2.2 (a gain of 1.33) passes and 2.0 (1.53) does not
    assert bool(check_jump(spec(), value, [3.534])) is escalates


def test_the_bound_is_configurable_off_and_judges_only_the_first_generations():
    assert check_jump(spec(max_relative_gain=0.6), 1.609, [3.534]) == []
    assert check_jump(spec(max_relative_gain=None), 1.609, [3.534]) == []
    assert check_jump(spec(max_relative_gain=0.1), 3.0, [3.534]), "a tighter bound escalates a 15 % step"
    # Two past gains: the lineage's own scale judges now (rule 2), not the baseline's value.
    history = [3.534, 2.4, 1.5]
    assert check_jump(spec(), 1.0, history) == [], "0.5 is within 3 x the largest past gain (1.13)"


def test_the_rule_works_on_a_maximised_metric_and_leaves_a_zero_baseline_alone():
    reward = parse_spec({
        "name": "rl", "objective": {"metric": "reward", "goal": "maximize"},
        "data": {"prepare": "true", "visible": ["x"]}, "train": {"command": "true"}, "scorer": {"command": "true"},
        "oversight": {"perfect": None},
    })
    assert check_jump(reward, 130.0, [100.0]) == [] and check_jump(reward, 150.0, [100.0])
    assert check_jump(reward, 5.0, [0.0]) == [], "no scale to take a fraction of"


def _bpc_repo(tmp_path, oversight: str):
    """The toy task with its metric called bpc and the rule at its default (the toy turns it off)."""
    files = toy_task_files(generations=1, candidates=1)
    files["progenitor.yaml"] = (files["progenitor.yaml"].replace("metric: error", "metric: bpc")
                                .replace("max_relative_gain: null", oversight))
    files["score.py"] = files["score.py"].replace('print(f"error:', 'print(f"bpc:')
    files["train.py"] = files["train.py"].replace('print(f"error:', 'print(f"bpc:')
    return make_repo(tmp_path / "repo", files)


@pytest.mark.loop
def test_a_first_generation_gain_of_half_the_baseline_s_bits_per_character_waits_for_a_person_in_auto_mode(tmp_path):
    repo = _bpc_repo(tmp_path, "mode: auto, poll_seconds: 0.05")
    # w = 1 is the baseline (|1 - 3| = 2 in units of the inputs); w = 2 halves it exactly.
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS), detach=True,
                                   architect=scripted([[{"hypothesis": "halve the bits", "params": {"w": 2.0}}]]))
    assert summary.status == "waiting"
    [gate] = progenitor.pending(summary.run_id, repo=repo)
    assert gate.gate == "g1/promotion"
    value = gate.request["action_requests"][0]["args"]["metrics"]["bpc"]
    baseline = gate.request["context"]["baseline"]["bpc"]
    assert value == pytest.approx(baseline / 2, rel=1e-6)
    assert "50% of the baseline's" in gate.description and "possible capability jump" in gate.description
    progenitor.decide(summary.run_id, "reject", by="pat", comment="too good to be true", repo=repo)
    assert progenitor.resume_run(summary.run_id, repo=repo).champion == pytest.approx(baseline)


@pytest.mark.loop
def test_the_same_run_with_the_bound_raised_promotes_by_policy(tmp_path):
    repo = _bpc_repo(tmp_path, "mode: auto, max_relative_gain: 0.6")
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS),
                                   architect=scripted([[{"hypothesis": "halve the bits", "params": {"w": 2.0}}]]))
    assert summary.status == "finished" and summary.champion < summary.baseline
