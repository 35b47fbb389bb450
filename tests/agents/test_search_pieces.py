"""The offline search's pure pieces: parent selection from the archive, local steps, the
sampler choice, and the lessons computed from the numbers."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from progenitor.agents.architect import parents as rule
from progenitor.agents.architect.lessons import compute, describe_changes
from progenitor.agents.architect.local import neighbour
from progenitor.agents.architect.search import local_slots
from progenitor.agents.base import Outcome, Parent
from progenitor.candidate import Candidate, Decision, Proposal
from progenitor.candidate.evidence import PairedTest
from progenitor.task.spec import SearchSpace


def _cand(gen: int, k: int, parent: str, status: str = "scored", value: float | None = None, **extra) -> Candidate:
    return Candidate(run="r", gen=gen, k=k, objective="acc", status=status, parent=parent, sha=f"s{gen}{k}",
                     proposal=Proposal(gen=gen, k=k, hypothesis=f"h{gen}{k}"),
                     metrics={"acc": value} if value is not None else {}, **extra)


BASE = Parent(name="g0/c0", sha="s00", value=0.90, params={"lr": 0.01})


def test_nodes_are_the_baseline_and_the_scored_candidates_with_their_children_counted():
    records = [_cand(1, 0, "s00", value=0.95), _cand(1, 1, "s00", value=0.91), _cand(1, 2, "s00", status="failed"),
               _cand(2, 0, "s10", value=0.96), _cand(2, 1, "s10", status="rejected"),
               _cand(2, 2, "s11", value=0.99, guard_failed="params too large"),
               _cand(2, 3, "s11", value=0.97, decision=Decision(verdict="not promoted", by="human:ann")),
               _cand(3, 0, "s10", value=0.98, decision=Decision(verdict="reverted", by="human:ann"))]
    nodes = {n.name: n for n in rule.nodes_of(BASE, records)}
    assert set(nodes) == {"g0/c0", "g1/c0", "g1/c1", "g2/c0"}, "failed, rejected, guard-broken, refused, reverted: out"
    assert nodes["g0/c0"].children == 3 and nodes["g1/c0"].children == 3 and nodes["g1/c1"].children == 2
    assert nodes["g2/c0"].value == 0.96 and nodes["g2/c0"].kind == "improve"


def test_a_crash_is_a_debug_node_only_for_an_architect_that_debugs():
    records = [_cand(1, 0, "s00", value=0.95), _cand(2, 0, "s10", status="oom", reason="out of memory"),
               _cand(2, 1, "s10", status="pruned")]
    assert "g2/c0" not in {n.name for n in rule.nodes_of(BASE, records)}
    nodes = {n.name: n for n in rule.nodes_of(BASE, records, debug=True)}
    debug = nodes["g2/c0"]
    assert debug.kind == "debug" and debug.value == 0.95 and debug.reason == "out of memory"
    assert "g2/c1" not in nodes, "pruned ran and was behind: nothing to debug"
    w = dict(zip(nodes, rule.weights(list(nodes.values()), "maximize")))
    assert w["g2/c0"] == pytest.approx(w["g1/c0"] * rule.DEBUG_SHARE * (1 + 2) / (1 + 0)), \
        "half of what its parent's score gives (its parent has two children, it has none)"


def test_weights_prefer_high_scores_and_few_children():
    nodes = [Parent(name="a", sha="a", value=0.90), Parent(name="b", sha="b", value=0.95),
             Parent(name="c", sha="c", value=0.99), Parent(name="d", sha="d", value=0.99, children=3)]
    w = rule.weights(nodes, "maximize")
    assert w[2] > w[1] > w[0], "the better, the likelier"
    assert w[3] == pytest.approx(w[2] / 4), "each child divides the weight: 1 / (1 + children)"
    assert w[0] < 0.01 * w[2], "the bottom of the range is rarely drawn (sigmoid, steepness 10)"
    flipped = rule.weights([n.model_copy(update={"value": -n.value}) for n in nodes], "minimize")
    assert flipped == pytest.approx(w), "minimising is the mirror image"


def test_choose_is_seeded_per_candidate_and_follows_the_weights():
    nodes = [Parent(name="a", sha="a", value=0.90), Parent(name="b", sha="b", value=0.99)]
    assert rule.choose(nodes, "maximize", 7, 3, 1) == rule.choose(nodes, "maximize", 7, 3, 1), "a resume draws the same"
    draws = Counter(rule.choose(nodes, "maximize", seed, 1, 0).name for seed in range(400))
    share = rule.weights(nodes, "maximize")[1] / sum(rule.weights(nodes, "maximize"))
    assert abs(draws["b"] / 400 - share) < 0.05
    assert rule.choose([Parent(name="only", sha="x", value=None)], "maximize", 0, 1, 0).name == "only"


SPACE = SearchSpace.model_validate({"file": "config.yaml", "params": {
    "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    "width": {"type": "int", "low": 8, "high": 512, "log": True},
    "depth": {"type": "int", "low": 1, "high": 3},
    "act": {"type": "categorical", "choices": ["relu", "gelu", "tanh"]},
    "drop": {"type": "float", "low": 0.0, "high": 0.5, "step": 0.1},
}})


def test_a_local_step_stays_in_the_space_and_near_its_parent():
    parent = {"lr": 0.003, "width": 64, "depth": 2, "act": "relu", "drop": 0.1}
    rng = random.Random(0)
    moved = Counter()
    for _ in range(300):
        child = neighbour(SPACE, parent, rng)
        assert child != parent
        assert 1e-4 <= child["lr"] <= 1e-1 and 8 <= child["width"] <= 512 and child["depth"] in (1, 2, 3)
        assert isinstance(child["width"], int) and child["act"] in ("relu", "gelu", "tanh")
        assert round(child["drop"] * 10) == pytest.approx(child["drop"] * 10), "the step grid of a float knob"
        moved.update(n for n in parent if child[n] != parent[n])
        assert 0.003 / 30 < child["lr"] < 0.003 * 30, "a step, not a jump across the log range"
    assert 1.5 < sum(moved.values()) / 300 < 3.0, "about 2 of the 5 knobs move"
    fresh = neighbour(SPACE, {"lr": 0.003}, random.Random(1))
    assert set(fresh) == set(SPACE.params), "a knob the parent lacks is drawn anywhere in the space"


def test_local_slots_spread_the_share():
    assert local_slots(4, 0.0) == [] and local_slots(4, 1.0) == [0, 1, 2, 3]
    assert local_slots(4, 0.5) == [1, 3] and local_slots(4, 0.25) == [3] and len(local_slots(7, 0.5)) == 3


def test_computed_lessons_say_what_held_by_how_much_and_what_next():
    out = Outcome(name="g2/c1", status="scored", params={"lr": 0.01, "width": 64}, value=0.97, parent="g1/c0",
                  parent_value=0.95, parent_params={"lr": 0.003, "width": 64})
    lesson = compute(out, "maximize")
    assert lesson.verdict == "confirmed" and lesson.gain == pytest.approx(0.02) and lesson.parent == "g1/c0"
    assert "lr 0.003->0.01 (up)" in lesson.text and "not tested against the noise" in lesson.text
    assert "push the same way" in lesson.next
    noisy = out.model_copy(update={"versus_parent": PairedTest(test="sign", examples=359, wins=3, losses=2, mean_gain=0.003,
                                                               p_value=0.5, level=0.05, significant=False)})
    assert compute(noisy, "maximize").verdict == "inconclusive"
    worse = compute(out.model_copy(update={"value": 0.90}), "maximize")
    assert worse.verdict == "refuted" and worse.gain < 0 and "step back" in worse.next
    crashed = compute(out.model_copy(update={"status": "oom", "value": None, "reason": "out of memory"}), "maximize")
    assert crashed.verdict == "failed" and "out of memory" in crashed.text
    assert compute(out.model_copy(update={"status": "rejected", "value": None}), "maximize").verdict == "not run"
    assert describe_changes({"a": 1, "b": "x"}, {"a": 2, "b": "y"}) == ["a 1->2 (up)", "b x->y"]


@pytest.mark.loop
def test_cmaes_is_a_sampler_choice_started_at_the_centre():
    import warnings

    from progenitor.agents.architect.sampler import make_sampler

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecation or experimental warning reaches the user
        sampler = make_sampler(3, "cmaes")
    assert type(sampler).__name__ == "CmaEsSampler" and sampler._x0 is None  # the centre of the space
    with pytest.raises(ValueError, match="unknown sampler"):
        make_sampler(3, "bogus")
