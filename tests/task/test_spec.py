from __future__ import annotations

import pytest

from progenitor.errors import SpecError
from progenitor.task.spec import load_spec, load_spec_text, parse_size
from progenitor.testing import toy_task_files


def spec_text(**replace: str) -> str:
    text = toy_task_files()["progenitor.yaml"]
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    return text


def test_toy_spec_loads():
    spec = load_spec_text(spec_text())
    assert spec.objective.metric == "error"
    assert spec.objective.goal == "minimize"
    assert spec.search_space.params["w"].high == 6.0
    assert "progenitor.yaml" in spec.protected_paths
    assert spec.train.resources.memory_bytes == 1024**3


def test_unknown_key_is_named():
    with pytest.raises(SpecError) as err:
        load_spec_text(spec_text(**{"name: toy": "name: toy\nnmae: oops"}))
    assert "unknown field 'nmae'" in str(err.value)


def test_wrong_type_names_field_and_value():
    with pytest.raises(SpecError) as err:
        load_spec_text(spec_text(**{"timeout: 30": "timeout: soon"}))
    message = str(err.value)
    assert "'train.timeout'" in message and "'soon'" in message


def test_missing_scorer_is_named():
    text = spec_text()
    text = text[: text.index("scorer:")] + text[text.index("protected:"):]
    with pytest.raises(SpecError) as err:
        load_spec_text(text)
    assert "required field 'scorer' is missing" in str(err.value)


def test_bad_literal_lists_allowed_values():
    with pytest.raises(SpecError) as err:
        load_spec_text(spec_text(**{"goal: minimize": "goal: lower"}))
    assert "'objective.goal'" in str(err.value) and "maximize" in str(err.value)


def test_bad_param_range_explained():
    with pytest.raises(SpecError) as err:
        load_spec_text(spec_text(**{"low: 0.0, high: 6.0": "low: 6.0, high: 1.0"}))
    assert "search_space.params.w" in str(err.value) and "below" in str(err.value)


def test_not_yaml(tmp_path):
    (tmp_path / "progenitor.yaml").write_text("name: [unclosed\n")
    with pytest.raises(SpecError) as err:
        load_spec(tmp_path)
    assert "not valid YAML at line" in str(err.value)


@pytest.mark.parametrize("extra", ["oversight: {perfect: null}\n", "budget: {generations: 1, generations: 5}\n"])
def test_a_key_given_twice_is_refused_not_silently_replaced(extra):
    """Plain YAML keeps the last of two equal keys: a second ``oversight:`` would undo the
    toy's own mapping without a word (how a test once ran with the jump rule it meant to turn off)."""
    with pytest.raises(SpecError) as err:
        load_spec_text(toy_task_files()["progenitor.yaml"] + extra)
    assert "is given twice" in str(err.value) and "line" in str(err.value)


def test_missing_file_says_how_to_make_one(tmp_path):
    with pytest.raises(SpecError) as err:
        load_spec(tmp_path)
    assert "progenitor init" in str(err.value)


@pytest.mark.parametrize("text,expected", [("2g", 2 * 1024**3), ("512m", 512 * 1024**2), ("1.5G", int(1.5 * 1024**3)), (100, 100)])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


def test_bad_memory_size():
    with pytest.raises(SpecError) as err:
        load_spec_text(spec_text(**{"memory: 1g": "memory: lots"}))
    assert "train.resources.memory" in str(err.value) and "512m or 2g" in str(err.value)


@pytest.mark.parametrize("old,new,message", [
    ("name: toy", "name: toy\nnmae: oops", "unknown field 'nmae'; did you mean 'name'?"),
    ("budget: {", "budget: {generatoins: 3, ", "unknown field 'budget.generatoins'; did you mean 'generations'?"),
    ("    w: {type: float,", "    w: {hihg: 2, type: float,", "unknown field 'search_space.params.w.hihg'; did you mean 'high'?"),
    ("guards: [{metric: params, max: 10}]", "guards: [{metric: params, max: 10, mni: 0}]",
     "unknown field 'guards[0].mni'; did you mean 'min'?"),
    ("name: toy", "name: toy\nzzzz: 1", "unknown field 'zzzz'; remove it or check its spelling"),
])
def test_an_unknown_key_gets_the_nearest_name_at_its_level(old, new, message):
    with pytest.raises(SpecError) as err:
        load_spec_text(spec_text(**{old: new}))
    assert message in str(err.value)


def test_placeholders_are_checked_when_the_spec_loads():
    with pytest.raises(SpecError) as err:
        load_spec_text(spec_text(**{"--labels {data}/holdout_labels.npy": "--labels {dta}/holdout_labels.npy"}))
    assert "'scorer.command'" in str(err.value) and "unknown placeholder {dta} (did you mean {data}?)" in str(err.value)
    with pytest.raises(SpecError, match=r"'data.prepare'.*unknown placeholder \{out\}"):
        load_spec_text(spec_text(**{"prepare.py --out {data}": "prepare.py --out {out}"}))
    spec = load_spec_text(spec_text(**{"prepare.py --out {data}": "prepare.py --out {data} && awk '{print $1}' ${HOME} {{x}}"}))
    assert "{{x}}" in spec.data.prepare


def test_one_filler_for_every_command():
    from progenitor.task.placeholders import fill

    assert fill("awk '{print $1}' {data}/x > {out}/y; echo ${HOME} {{data}}", {"data": "/d d", "out": "/o"}) == \
        "awk '{print $1}' '/d d'/x > /o/y; echo ${HOME} {data}"


def test_every_problem_is_listed_each_with_its_did_you_mean():
    """A misspelt required key once hid its 'did you mean' behind '(and 1 more problem)'."""
    text = spec_text(**{"objective: {metric: error, goal: minimize}": "objective: {metrc: error, goal: minimize}",
                        "timeout: 30": "timeout: soon", "resources: {cpus: 1": "resources: {cpu: 1"})
    with pytest.raises(SpecError) as err:
        load_spec_text(text)
    assert str(err.value).splitlines() == [
        "progenitor.yaml: 3 problems:",
        "  - unknown field 'objective.metrc'; did you mean 'metric'? (a required field, so it is missing too)",
        "  - field 'train.timeout' has bad value 'soon' (input should be a valid number, unable to parse string as a number)",
        "  - unknown field 'train.resources.cpu'; did you mean 'cpus'?",
    ]
    assert err.value.problems[0] == ("progenitor.yaml: unknown field 'objective.metrc'; did you mean 'metric'? "
                                     "(a required field, so it is missing too)")
    assert len(err.value.problems) == 3


@pytest.mark.parametrize("old,new,message", [
    ("guards: [{metric: params, max: 10}]", "guards: [{metric: params}]",
     "progenitor.yaml: in 'guards[0]': a guard needs at least one of 'min', 'max', 'max_regression' or 'max_drift'"),
    ("goal: minimize}", "goal: minimize, range: [1, 0]}",
     "progenitor.yaml: in 'objective': 'range' [1.0, 0.0] must be [low, high] with low < high; swap them"),
    ("    w: {type: float, low: 0.0, high: 6.0}", "    float: {type: float, low: 6.0, high: 1.0}",
     "progenitor.yaml: in 'search_space.params.float': 'low' (6.0) must be below 'high' (1.0)"),
    ("oversight: {", "oversight: {perfect: best, ",
     "progenitor.yaml: field 'oversight.perfect' has bad value 'best' (input should be a valid number, unable to "
     "parse string as a number; or allowed: 'auto')"),
])
def test_a_rule_between_fields_is_one_sentence_naming_them_never_the_whole_mapping(old, new, message):
    with pytest.raises(SpecError) as err:
        load_spec_text(spec_text(**{old: new}))
    assert str(err.value) == message
