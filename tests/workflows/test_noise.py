"""Promotion above the noise in whole runs: a scorer that writes per-example scores, a gain of one
example of 359 not promoted (auto mode) and shown to a person with why (approver mode), a gain of
ten promoted; objective.repeats training the best candidates again with other seeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import progenitor
from progenitor.compute import register_executor
from progenitor.errors import SpecError
from progenitor.options import RunOptions
from progenitor.run.rundir import RunDir
from progenitor.task.spec import load_spec_text
from progenitor.testing import FakeExecutor, FakeRun, make_repo, scripted

FAST = RunOptions(executor="fake", sandbox="process")

# 359 holdout examples (the digits example's holdout size): the label is 1 below 200; a model with
# threshold w predicts 1 below w. The baseline (w = 190) gets 10 examples wrong; w = 191 one fewer.
PREPARE = '''\
import argparse, os
import numpy as np
parser = argparse.ArgumentParser()
parser.add_argument("--out", required=True)
args = parser.parse_args()
x = np.arange(359, dtype=float)
np.save(os.path.join(args.out, "holdout_inputs.npy"), x)
np.save(os.path.join(args.out, "holdout_labels.npy"), (x < 200).astype(float))
np.save(os.path.join(args.out, "train_x.npy"), x)
'''
SCORE = '''\
import argparse
import numpy as np
parser = argparse.ArgumentParser()
parser.add_argument("--predictions", required=True)
parser.add_argument("--labels", required=True)
parser.add_argument("--scores")
args = parser.parse_args()
right = (np.load(args.predictions) == np.load(args.labels)).astype(float)
if args.scores:
    np.save(args.scores + "/per_example.npy", right)
print(f"accuracy: {right.mean():.6f}")
'''
TRAIN = '''\
import argparse, os
import numpy as np, yaml
parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
parser.add_argument("--out", required=True)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
w = float(yaml.safe_load(open("config.yaml"))["w"]) + 0.5 * args.seed  # the seed moves the threshold a little
np.save(os.path.join(args.out, "predictions.npy"), (np.load(os.path.join(args.data, "holdout_inputs.npy")) < w).astype(float))
'''
SPEC = '''\
name: acc359
objective: {metric: accuracy, goal: maximize%(objective)s}
data:
  prepare: python prepare.py --out {data}
  visible: [train_x.npy, holdout_inputs.npy]
train:
  command: python train.py --data {data} --out {out}%(seed)s
  timeout: 60
scorer:
  command: python score.py --predictions {out}/predictions.npy --labels {data}/holdout_labels.npy --scores {scores}
  predictions: {file: predictions.npy, match: holdout_labels.npy}
protected: [prepare.py, score.py]
search_space:
  file: config.yaml
  params:
    w: {type: float, low: 0.0, high: 359.0}
budget: {generations: %(generations)d, candidates: 2}
oversight: {mode: %(mode)s, perfect: null, max_relative_gain: null}
sandbox: {backend: process}
'''


def _threshold(tree: Path, data: Path, out: Path) -> FakeRun:
    import yaml

    w = float(yaml.safe_load((tree / "config.yaml").read_text())["w"])
    np.save(out / "predictions.npy", (np.load(data / "holdout_inputs.npy") < w).astype(float))
    return FakeRun()


@pytest.fixture(autouse=True)
def fake_executor():
    register_executor("threshold", lambda data, **_: FakeExecutor(data, training=_threshold))


def _repo(tmp_path: Path, mode: str = "auto", generations: int = 2, objective: str = "", seed: str = "") -> Path:
    spec = SPEC % {"mode": mode, "generations": generations, "objective": objective, "seed": seed}
    return make_repo(tmp_path / "repo", {"progenitor.yaml": spec, "prepare.py": PREPARE, "score.py": SCORE,
                                         "train.py": TRAIN, "config.yaml": "w: 190.0\n"})


ONE_MORE, WORSE, TEN_MORE = {"params": {"w": 191.0}}, {"params": {"w": 150.0}}, {"params": {"w": 200.0}}


@pytest.mark.loop
def test_a_gain_of_one_example_of_359_is_not_promoted_and_ten_are(tmp_path):
    repo = _repo(tmp_path)
    summary = progenitor.start_run(repo, RunOptions(executor="threshold", sandbox="process"),
                                   architect=scripted([[ONE_MORE, WORSE], [TEN_MORE, WORSE]]))
    lineage = {(c.gen, c.k): c for c in progenitor.get_lineage(summary.run_id, repo).candidates}
    one = lineage[(1, 0)]
    assert one.value == pytest.approx(350 / 359) and one.decision.verdict == "not promoted"
    assert "does not hold above the noise: 1 example(s) better, 0 worse of 359" in one.decision.reason
    assert one.evidence.paired.p_value == pytest.approx(0.5) and one.evidence.against == "g0/c0"
    assert lineage[(2, 0)].decision.verdict == "promoted", lineage[(2, 0)].decision.reason
    assert lineage[(2, 0)].evidence.paired.wins == 10 and lineage[(2, 0)].evidence.paired.significant
    assert summary.honesty.held_by_noise == 1 and summary.champion == pytest.approx(1.0)
    assert summary.honesty.paired.wins == 10, "the champion against the baseline, example by example"
    assert any("not promoted, its gain within the noise" in n for n in summary.honesty.notes)
    decisions = [e for e in RunDir(repo, summary.run_id).events() if e.type == "oversight.decision"]
    assert decisions[0].action == "keep" and decisions[0].noise and decisions[1].action == "approve"
    assert [e.selection.noise is not None for e in RunDir(repo, summary.run_id).events() if e.type == "select"] == [True, False]


@pytest.mark.loop
def test_in_approver_mode_the_gate_shows_why_policy_would_not_promote_it(tmp_path):
    repo = _repo(tmp_path, mode="approver", generations=1)
    summary = progenitor.start_run(repo, RunOptions(executor="threshold", sandbox="process"),
                                   architect=scripted([[ONE_MORE, WORSE]]), detach=True)
    assert summary.status == "waiting"
    (pending,) = progenitor.pending(repo=repo)
    (action,) = pending.request["action_requests"]
    evidence = action["args"]["evidence"]
    assert evidence["paired"]["wins"] == 1 and evidence["paired"]["examples"] == 359
    assert not evidence["paired"]["significant"] and "does not hold above the noise" in evidence["verdict"]
    assert "policy would keep the champion" in action["description"]
    from tests.ui.test_ui import client  # the page as its owner, signed in

    card = client(repo).get("/inbox").text
    assert "Above the noise?" in card and "does not hold above the noise" in card
    assert "sign test against g0/c0: 1 example(s) better, 0 worse of 359, p 0.5" in card
    progenitor.decide(summary.run_id, "reject", comment="one digit is luck", repo=repo)
    done = progenitor.resume_run(summary.run_id, repo)
    assert done.status == "finished" and done.champion == pytest.approx(349 / 359)


@pytest.mark.loop
def test_repeats_train_the_best_again_with_other_seeds_and_decide_on_the_mean(tmp_path):
    repo = _repo(tmp_path, generations=1, objective=", repeats: 3, significance: null", seed=" --seed {seed}")
    summary = progenitor.start_run(repo, RunOptions(executor="local", sandbox="process"),
                                   architect=scripted([[TEN_MORE, WORSE]]))
    (best, worse) = progenitor.get_lineage(summary.run_id, repo).candidates
    # seed s moves the threshold by s/2: w = 200, 200.5, 201 get 0, 1 and 1 example wrong (x = 200)
    assert [m["accuracy"] for m in best.repeats] == pytest.approx([1.0, 358 / 359, 358 / 359])
    assert best.value == pytest.approx((1 + 2 * 358 / 359) / 3) and worse.repeats == []
    assert best.decision.verdict == "promoted" and best.evidence.repeats == pytest.approx([1.0, 358 / 359, 358 / 359])
    run = RunDir(repo, summary.run_id)
    assert {(e.gen, e.k, e.seed) for e in run.events() if e.type == "repeat"} == {(0, 0, 1), (0, 0, 2), (1, 0, 1), (1, 0, 2)}
    assert (run.path / "g1" / "c0" / "seed2" / "out" / "predictions.npy").is_file()
    assert summary.honesty.baseline_repeats == pytest.approx([349 / 359, 350 / 359, 350 / 359])
    assert any("mean over training seeds" in n for n in summary.honesty.notes)


def test_repeats_need_a_seed_in_the_training_command():
    with pytest.raises(SpecError, match=r"objective.repeats is 3, but train.command has no \{seed\}"):
        load_spec_text(SPEC % {"mode": "auto", "generations": 1, "objective": ", repeats: 3", "seed": ""})
    spec = load_spec_text(SPEC % {"mode": "auto", "generations": 1, "objective": ", repeats: 3", "seed": " --seed {seed}"})
    assert spec.objective.repeats == 3 and spec.objective.significance == 0.05
