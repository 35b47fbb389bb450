"""The search space against the config file, the baseline and every proposal."""

from __future__ import annotations

import pytest
import yaml

import progenitor
from progenitor.errors import ModelBehaviorError
from progenitor.options import RunOptions
from progenitor.task.search_space import check_value, outside_space, space_problems, validate_proposal
from progenitor.task.spec import Param, SearchSpace
from progenitor.testing import make_repo, scripted, toy_task_files
from tests.helpers.records import lineage_json

SPACE = SearchSpace(file="config.json", params={
    "model.hidden": Param(type="int", low=8, high=256, log=True),
    "lr": Param(type="float", low=1e-4, high=1e-1, log=True),
    "act": Param(type="categorical", choices=["relu", "gelu"]),
})


@pytest.mark.parametrize("name,value,expected,problem", [
    ("model.hidden", 64.0, 64, None),
    ("model.hidden", 64.5, 64.5, "not a whole number"),
    ("model.hidden", 512, 512, "above high 256 (a log range)"),
    ("lr", 0.0, 0.0, "below low 0.0001 (a log range)"),
    ("lr", "0.01", "0.01", "not a number"),
    ("lr", True, True, "not a number"),
    ("lr", float("nan"), None, "not a finite number"),
    ("act", "silu", "silu", "not one of its choices"),
    ("act", "gelu", "gelu", None),
])
def test_a_value_meets_its_knob(name, value, expected, problem):
    got, why = check_value(name, SPACE.params[name], value)
    if expected is not None:
        assert got == expected and type(got) is type(expected)
    assert (why is None) if problem is None else (problem in why)


def test_a_proposal_out_of_the_space_is_the_architects_error():
    assert validate_proposal(SPACE, {"model.hidden": 32.0, "other": "kept"}) == {"model.hidden": 32, "other": "kept"}
    with pytest.raises(ModelBehaviorError, match="model.hidden 32.5 is not a whole number"):
        validate_proposal(SPACE, {"model.hidden": 32.5})


def test_space_problems_read_nested_keys_and_name_the_nearest():
    files = {"config.json": '{"model": {"hidden": 32, "depth": 2}, "lr": 0.01, "act": "relu"}'}
    assert space_problems(SPACE, list(files), files.get, "commit abc") == []
    typo = SPACE.model_copy(update={"params": {**SPACE.params, "model.hiden": SPACE.params["model.hidden"]}})
    [problem] = space_problems(typo, list(files), files.get, "commit abc")
    assert "key 'model.hiden' is not in config.json" in problem and "did you mean 'model.hidden'?" in problem
    [missing] = space_problems(SPACE, ["conf.json"], {"conf.json": "{}"}.get, "commit abc")
    assert "'config.json' is not in commit abc" in missing and "did you mean 'conf.json'?" in missing


def test_outside_space_names_each_value():
    assert outside_space(SPACE, {"model.hidden": 32, "lr": 0.0, "act": "relu"}) == ["lr 0.0 is below low 0.0001 (a log range)"]
    assert outside_space(SPACE, {"model.hidden": 32, "act": "relu"}) == ["lr is not set"]


@pytest.mark.loop
def test_an_int_knob_gets_an_int_and_a_bad_value_fails_only_its_candidate(tmp_path):
    files = toy_task_files(generations=1, candidates=3)
    files["progenitor.yaml"] = files["progenitor.yaml"].replace(
        "    w: {type: float, low: 0.0, high: 6.0}", "    w: {type: float, low: 0.0, high: 6.0}\n    n: {type: int, low: 1, high: 5}")
    files["config.yaml"] += "n: 2\n"
    repo = make_repo(tmp_path / "repo", files)
    script = [[{"hypothesis": "a float for an int", "params": {"w": 2.5, "n": 3.0}},
               {"hypothesis": "half a layer", "params": {"w": 2.5, "n": 3.5}},
               {"hypothesis": "off the range", "params": {"w": 9.0}}]]
    summary = progenitor.start_run(repo, RunOptions(executor="local", sandbox="process"), architect=scripted(script))
    cands = {c["k"]: c for c in lineage_json(summary.run_id, repo=repo)["candidates"]}
    import git

    config = yaml.safe_load(git.Repo(repo).git.show(f"{cands[0]['sha']}:config.yaml"))
    assert config["n"] == 3 and isinstance(config["n"], int)
    assert cands[0]["status"] == "scored"
    assert cands[1]["status"] == "failed" and "n 3.5 is not a whole number (int knob)" in cands[1]["reason"]
    assert cands[2]["status"] == "failed" and "w 9.0 is above high 6" in cands[2]["reason"]
