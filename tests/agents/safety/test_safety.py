"""The safety reviewer on real trees: before a candidate runs, and after it is scored."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import pytest

from progenitor.agents.safety import (
    ChangedFile,
    Finding,
    ReviewInput,
    base_findings,
    blocking,
    check_task,
    load_constitution,
    needs_human,
    review_candidate,
)
from progenitor.agents.safety.bandit_check import SEVERITY_MAP, map_severity, run_bandit
from progenitor.errors import UserError
from progenitor.evaluation.after_scoring import check_after_training, check_guards, check_jump, perfect_value
from progenitor.task.spec import load_spec, parse_spec

SPEC = """\
name: digits
objective: {metric: accuracy, goal: maximize}
data:
  prepare: python prepare.py --out {data}
train:
  command: python train.py --data {data} --out {out}
scorer:
  command: python score.py --out {out}
protected: [score.py, prepare.py]
guards: [{metric: params, max: 1000}]
safety: {constitution: constitution.yaml, block_at: high}
"""

CONSTITUTION = """\
forbidden_imports: [{modules: [socket], severity: critical, reason: no network}]
forbidden_calls: [{calls: [eval], severity: critical}]
forbidden_files: [{patterns: ["*.so"], severity: critical}]
symlinks: {severity: critical}
max_diff: {lines: 50, files: 5, severity: high}
required_guards: {metrics: [params], severity: high}
principles: [no cheating]
"""

TRAIN = "import argparse\nprint('accuracy: 0.5')\n"


@pytest.fixture
def trees(tmp_path: Path) -> tuple[Path, Path]:
    base = tmp_path / "base"
    base.mkdir()
    for name, text in {"progenitor.yaml": SPEC, "constitution.yaml": CONSTITUTION, "train.py": TRAIN,
                       "score.py": "print('accuracy: 1')\n", "prepare.py": "\n", "config.yaml": "lr: 0.1\n",
                       "requirements.txt": "numpy>=1.24\n"}.items():
        (base / name).write_text(text)
    cand = tmp_path / "cand"
    shutil.copytree(base, cand, symlinks=True)
    return base, cand


def review(base: Path, cand: Path, changed: dict[str, str]) -> list[Finding]:
    """Review the candidate tree; ``changed`` maps path -> status."""
    inp = ReviewInput(spec=load_spec(base), base_tree=base, candidate_tree=cand,
                      changed=[ChangedFile(path=p, status=s) for p, s in changed.items()])
    return review_candidate(inp)


def summary(findings: list[Finding]) -> list[tuple[str, str, str, object]]:
    return [(f.rule, f.severity, f.file, f.line) for f in findings]


def test_an_honest_candidate_has_no_blocking_findings(trees):
    base, cand = trees
    (cand / "config.yaml").write_text("lr: 0.01\n")
    (cand / "train.py").write_text(TRAIN + "import numpy as np\nx = np.zeros(3)\n")
    found = review(base, cand, {"config.yaml": "M", "train.py": "M"})
    assert blocking(found, "high") == [] and not needs_human(found)


def test_protected_paths_come_from_the_base_spec(trees):
    base, cand = trees
    # The candidate un-protects score.py in its own spec: the base's spec still rules.
    (cand / "progenitor.yaml").write_text(SPEC.replace("protected: [score.py, prepare.py]", "protected: []"))
    (cand / "score.py").write_text("print('accuracy: 1.0')\n")
    found = review(base, cand, {"progenitor.yaml": "M", "score.py": "M"})
    assert {(f.rule, f.file) for f in found} >= {("protected-path", "progenitor.yaml"), ("protected-path", "score.py")}
    assert all(f.severity == "critical" for f in blocking(found, "high"))


def test_a_constitution_change_needs_a_human(trees):
    base, cand = trees
    (cand / "constitution.yaml").write_text("principles: []\n")  # drops every rule
    (cand / "train.py").write_text("import socket\n")
    found = review(base, cand, {"constitution.yaml": "M", "train.py": "M"})
    rules = {f.rule for f in found}
    # Judged by the base's constitution, not the relaxed one it brings.
    assert {"constitution-change", "protected-path", "forbidden-import"} <= rules
    assert needs_human(found)
    change = next(f for f in found if f.rule == "constitution-change")
    assert change.severity == "critical" and change.escalate and change.file == "constitution.yaml"


def test_deleting_or_renaming_the_constitution_is_a_change_too(trees):
    base, cand = trees
    (cand / "constitution.yaml").rename(cand / "old.yaml")
    inp = ReviewInput(spec=load_spec(base), base_tree=base, candidate_tree=cand,
                      changed=[ChangedFile(path="old.yaml", status="R", old_path="constitution.yaml")])
    assert needs_human(review_candidate(inp))


def test_constitution_rules_on_code_carry_file_line_and_severity(trees):
    base, cand = trees
    (cand / "model.py").write_text("import os\nimport socket as s\nrun = eval\n")
    found = review(base, cand, {"model.py": "A"})
    assert ("forbidden-import", "critical", "model.py", 2) in summary(found)
    assert ("forbidden-call", "critical", "model.py", 3) in summary(found)
    assert found[0].severity == "critical"  # most severe first


def test_forbidden_files_and_symlinks(trees):
    base, cand = trees
    (cand / "fast.so").write_bytes(b"\x7fELF")
    os.symlink("/etc/passwd", cand / "labels.npy")
    found = review(base, cand, {"fast.so": "A", "labels.npy": "A"})
    assert ("forbidden-file", "critical", "fast.so", None) in summary(found)
    assert ("symlink", "critical", "labels.npy", None) in summary(found)


def test_a_symlink_missing_from_the_change_list_is_still_found(trees):
    base, cand = trees
    (cand / "out").mkdir()
    os.symlink("../../base/score.py", cand / "out" / "peek")
    found = review(base, cand, {})
    assert [(f.rule, f.file) for f in found] == [("symlink", "out/peek")]


def test_a_python_symlink_is_never_read(trees):
    base, cand = trees
    secret = cand.parent / "secret.py"
    secret.write_text("import socket\n")
    os.symlink(secret, cand / "model.py")
    found = review(base, cand, {"model.py": "A"})
    assert [f.rule for f in found] == ["symlink"]


def test_no_new_symlink_is_built_in_whatever_the_constitution_says(trees):
    base, cand = trees
    (base / "constitution.yaml").write_text("principles: [anything goes]\n")  # no symlinks entry at all
    (cand / "config.yaml").unlink()
    os.symlink(str(base / "progenitor.yaml"), cand / "config.yaml")
    os.symlink(str(base), cand / "lib")  # a linked directory too
    found = review(base, cand, {"config.yaml": "T", "lib": "A"})
    assert [(f.rule, f.severity, f.file) for f in found if f.rule == "symlink"] == \
        [("symlink", "critical", "config.yaml"), ("symlink", "critical", "lib")]
    assert "reaches outside the candidate's tree" in found[0].message


def test_a_link_the_base_already_had_is_no_finding(trees):
    base, cand = trees
    os.symlink("train.py", base / "alias.py")
    os.symlink("train.py", cand / "alias.py")
    assert [f for f in review(base, cand, {}) if f.rule == "symlink"] == []


def test_reviewer_reads_nothing_through_a_linked_directory(trees, tmp_path):
    base, cand = trees
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "model.py").write_text("import socket\nholdout_labels = 1\n")
    os.symlink(str(secret), cand / "pkg")
    found = review(base, cand, {"pkg/model.py": "A"})
    assert {f.rule for f in found} == {"symlink"}, "the linked file's content is never read"


@pytest.mark.parametrize("path", [".GIT/hooks/post-commit", "src/.Git/config", ".git./x", "GIT~1/config"])
def test_a_path_into_git_s_own_files_is_a_built_in_critical_finding(trees, path):
    base, cand = trees
    (base / "constitution.yaml").write_text("principles: [anything goes]\n")
    found = review(base, cand, {path: "A"})
    assert [(f.rule, f.severity, f.file) for f in found] == [("git-path", "critical", path)]


@pytest.mark.parametrize("path, status", [
    ("requirements.txt", "M"), ("requirements-dev.txt", "A"), ("sub/Requirements.TXT", "A"),
    ("requirements/base.txt", "A"), ("pyproject.toml", "D"), ("setup.py", "A"), ("setup.cfg", "M"),
    ("environment.yml", "A"), ("poetry.lock", "A"), ("uv.lock", "A"), ("Pipfile.lock", "A"),
    ("conda-lock.yml", "A"), ("constraints.txt", "A"),
])
def test_a_dependency_manifest_change_is_a_built_in_escalating_finding(trees, path, status):
    base, cand = trees
    (base / "constitution.yaml").write_text("principles: [anything goes]\n")
    target = cand / path
    target.parent.mkdir(parents=True, exist_ok=True)
    if status != "D":
        target.write_text("numpy\nleftpad-ai==0.1\n")
    found = review(base, cand, {path: status})
    [dep] = [f for f in found if f.rule == "dependency-change"]
    assert (dep.severity, dep.escalate, dep.file) == ("medium", True, path)
    assert blocking([dep], "high") == [] and needs_human([dep]), "it may run; only a person may promote it"


def test_renaming_a_manifest_away_is_a_dependency_change(trees):
    base, cand = trees
    inp = ReviewInput(spec=load_spec(base), base_tree=base, candidate_tree=cand,
                      changed=[ChangedFile(path="notes.txt", status="R", old_path="requirements.txt")])
    assert [f.file for f in review_candidate(inp) if f.rule == "dependency-change"] == ["requirements.txt"]


def test_forbidden_file_patterns_match_in_any_case(trees):
    base, cand = trees
    (cand / "FAST.SO").write_bytes(b"\x7fELF")
    assert ("forbidden-file", "critical", "FAST.SO", None) in summary(review(base, cand, {"FAST.SO": "A"}))


def test_diff_size_limit(trees):
    base, cand = trees
    (cand / "big.py").write_text("x = 1\n" * 60)
    found = review(base, cand, {"big.py": "A"})
    [size] = [f for f in found if f.rule == "diff-size"]
    assert size.severity == "high" and "60 lines changed (at most 50)" in size.message


def test_paths_escaping_the_tree(trees):
    base, cand = trees
    found = review(base, cand, {"../evil.py": "A"})
    assert [(f.rule, f.severity) for f in found] == [("path-escape", "critical")]


def test_required_guards_are_checked_against_the_task(trees, tmp_path):
    base, _ = trees
    (base / "progenitor.yaml").write_text(SPEC.replace("guards: [{metric: params, max: 1000}]\n", ""))
    _, found = check_task(load_spec(base), base)
    assert [(f.rule, f.file) for f in found] == [("missing-guard", "progenitor.yaml")]


def test_a_broken_constitution_fails_when_the_run_starts(trees):
    base, _ = trees
    (base / "constitution.yaml").write_text("forbidden_imports: [{modulez: [socket]}]\n")
    with pytest.raises(UserError, match=r"^constitution.yaml: .*'forbidden_imports\[0\]"):
        check_task(load_spec(base), base)


def test_without_a_named_constitution_the_default_applies(trees):
    base, cand = trees
    (base / "progenitor.yaml").write_text(SPEC.replace("constitution: constitution.yaml, ", ""))
    (cand / "train.py").write_text("import subprocess\n")
    found = review(base, cand, {"train.py": "M"})
    assert ("forbidden-import", "critical", "train.py", 1) in summary(found)


# --- bandit ---------------------------------------------------------------------------------

def test_bandit_findings_are_mapped_and_nosec_is_ignored(trees):
    base, cand = trees
    (cand / "train.py").write_text("import hashlib\nhashlib.md5(b'x')  # nosec\n")
    found = run_bandit(cand, ["train.py"])
    [md5] = [f for f in found if f.rule == "bandit-B324"]
    assert (md5.file, md5.line, md5.severity) == ("train.py", 2, "high")


def test_bandit_runs_through_the_review_and_can_be_switched_off(trees):
    base, cand = trees
    (cand / "train.py").write_text("import hashlib\nhashlib.md5(b'x')\n")
    assert "bandit-B324" in {f.rule for f in review(base, cand, {"train.py": "M"})}
    (base / "progenitor.yaml").write_text(SPEC.replace("block_at: high}", "block_at: high, bandit: false}"))
    assert "bandit-B324" not in {f.rule for f in review(base, cand, {"train.py": "M"})}


UPSTREAM = "import argparse\nimport hashlib\nTAG = hashlib.md5(b'x').hexdigest()\nprint('accuracy: 0.5')\n"
"""A base file with a line bandit rejects (B324, high) that a candidate may leave alone."""


def test_findings_on_lines_the_candidate_did_not_touch_are_not_its(trees):
    base, cand = trees
    (base / "train.py").write_text(UPSTREAM)
    (cand / "train.py").write_text(UPSTREAM.replace("0.5", "0.6"))
    assert review(base, cand, {"train.py": "M"}) == []


def test_a_copy_of_a_flagged_line_is_the_candidates(trees):
    base, cand = trees
    (base / "train.py").write_text(UPSTREAM)
    (cand / "train.py").write_text(UPSTREAM + "AGAIN = hashlib.md5(b'y').hexdigest()\n")
    found = [(f.rule, f.line) for f in review(base, cand, {"train.py": "M"})]
    assert found == [("bandit-B324", 5)]


def test_editing_a_flagged_statement_makes_its_finding_the_candidates(trees):
    base, cand = trees
    (base / "train.py").write_text(UPSTREAM.replace("hashlib.md5(b'x')", "hashlib.md5(\n    b'x')"))
    (cand / "train.py").write_text(UPSTREAM.replace("hashlib.md5(b'x')", "hashlib.md5(\n    b'other')"))
    assert [(f.rule, f.line) for f in review(base, cand, {"train.py": "M"})] == [("bandit-B324", 3)]


def test_a_change_elsewhere_that_changes_what_an_untouched_line_does_is_found(trees):
    base, cand = trees
    (base / "requirements.txt").write_text("torch\n")
    (base / "train.py").write_text("import torch.nn as nn\nact = getattr(nn, name)\n")
    (cand / "train.py").write_text("import os as nn\nact = getattr(nn, name)\n")
    found = review(base, cand, {"train.py": "M"})
    assert any(f.line == 2 and f.rule == "computed-name" and "on 'os'" in f.message for f in found), found


def test_a_renamed_file_keeps_its_parents_findings(trees):
    base, cand = trees
    (base / "tools.py").write_text(UPSTREAM)
    (cand / "helpers.py").write_text(UPSTREAM)
    inp = ReviewInput(spec=load_spec(base), base_tree=base, candidate_tree=cand,
                      changed=[ChangedFile(path="helpers.py", status="R", old_path="tools.py")])
    assert review_candidate(inp) == []


def test_the_parents_files_come_from_the_node_when_given(trees):
    base, cand = trees
    (cand / "train.py").write_text(UPSTREAM)
    changed = [ChangedFile(path="train.py", status="M")]
    inp = ReviewInput(spec=load_spec(base), base_tree=base, candidate_tree=cand, changed=changed)
    assert "bandit-B324" in {f.rule for f in review_candidate(inp)}, "the base's train.py has no md5 line"
    inp = inp.model_copy(update={"parent_files": {"train.py": UPSTREAM.encode()}})
    assert review_candidate(inp) == [], "the champion (the parent) had it already"


def test_the_bases_own_findings_are_listed_for_the_run_start(trees):
    base, _ = trees
    (base / "train.py").write_text(UPSTREAM)
    (base / "helpers.py").write_text("import pickle\n")
    found = {(f.rule, f.file) for f in base_findings(load_spec(base), base, load_constitution(base, "constitution.yaml"))}
    assert {("bandit-B324", "train.py"), ("bandit-B403", "helpers.py")} <= found


def test_severity_map_covers_every_rating_and_never_says_critical():
    levels = ("LOW", "MEDIUM", "HIGH")
    assert set(SEVERITY_MAP) == {(s, c) for s in levels for c in levels}
    assert "critical" not in SEVERITY_MAP.values()
    assert map_severity("high", "high") == "high" and map_severity("LOW", "LOW") == "info"
    assert map_severity("UNDEFINED", "HIGH") == "info"


# --- blocking -------------------------------------------------------------------------------

def test_blocking_threshold():
    found = [Finding(rule=r, severity=s, message="m") for r, s in [("a", "low"), ("b", "high"), ("c", "critical")]]
    assert [f.rule for f in blocking(found, "high")] == ["b", "c"]
    assert [f.rule for f in blocking(found, "info")] == ["a", "b", "c"]
    assert not needs_human(found)


# --- after training -------------------------------------------------------------------------

def spec(**extra) -> object:
    data = {"name": "t", "objective": {"metric": "accuracy"}, "data": {"prepare": "true"},
            "train": {"command": "true"}, "scorer": {"command": "true"}}
    data.update(extra)
    return parse_spec(data)


def test_self_report_gap():
    [gap] = check_after_training(spec(), {"accuracy": 0.99}, {"accuracy": 0.5}, [])
    assert gap.rule == "self-report-gap" and gap.severity == "medium"
    assert check_after_training(spec(), {"accuracy": 0.51}, {"accuracy": 0.5}, []) == []
    [nan] = check_after_training(spec(), {"accuracy": math.nan}, {"accuracy": 0.5}, [])
    assert nan.rule == "self-report-gap"


def test_capability_jump_against_the_lineage_history():
    history = [0.50, 0.52, 0.55, 0.56]  # largest past gain: 0.03
    assert check_after_training(spec(), {}, {"accuracy": 0.60}, history) == []  # 0.04 < 3 x 0.03
    [jump] = check_after_training(spec(), {}, {"accuracy": 0.70}, history)  # 0.14 > 0.09
    assert jump.rule == "capability-jump" and jump.severity == "high" and jump.escalate
    assert needs_human([jump])


def test_one_small_past_gain_is_no_scale_for_a_jump():
    # The digits demo, seed 0: a first promotion 0.002 above the baseline; a candidate 0.022
    # above it is an ordinary improvement, not a capability jump.
    assert check_after_training(spec(), {}, {"accuracy": 0.9685}, [0.9443, 0.9462, 0.9462]) == []
    [jump] = check_after_training(spec(), {}, {"accuracy": 0.9685}, [0.9443, 0.9462, 0.9481])
    assert "largest past gain (0.0019)" in jump.message


def test_capability_jump_with_max_jump_and_minimize():
    s = spec(objective={"metric": "loss", "goal": "minimize"}, oversight={"max_jump": 0.1})
    assert check_after_training(s, {}, {"loss": 0.95}, [1.0]) == []
    [jump] = check_after_training(s, {}, {"loss": 0.8}, [1.0])
    assert "oversight.max_jump" in jump.message


def test_a_first_generation_gain_is_judged_against_the_baseline():
    # No past gain: one rule is how much closer to a perfect score (0 here) the candidate got (the
    # other, its size against the baseline's value, is off here: tests/evaluation/test_jumps.py).
    error = spec(objective={"metric": "error", "goal": "minimize"}, oversight={"max_relative_gain": None})
    assert check_jump(error, 0.15, [3.12]) == []  # 21 times closer
    [jump] = check_jump(error, 0.02, [3.12])  # 156 times closer
    assert jump.rule == "capability-jump" and jump.escalate and "156 times closer" in jump.message
    [perfect] = check_jump(error, 0.0, [3.12])  # the case
    assert "a perfect score (0)" in perfect.message and "3.12 -> 0" in perfect.message
    accuracy = spec(oversight={"max_relative_gain": None})
    assert check_jump(accuracy, 0.99, [0.1]) == []  # 90 times closer to 1.0: under the bound of 100
    assert check_jump(accuracy, 0.9995, [0.5])  # 1000 times closer
    assert check_jump(accuracy, 0.96, [0.94]) == []


def test_a_perfect_score_escalates_in_any_generation_but_not_from_a_perfect_champion():
    error = spec(objective={"metric": "error", "goal": "minimize"})
    history = [3.0, 0.15]  # one honest past gain of 2.85: rule 2 alone would let 0.15 -> 0 pass
    [jump] = check_jump(error, 0.0, history)
    assert "a perfect score" in jump.message and "times the lineage" not in jump.message
    assert check_jump(error, 0.01, history) == [], "later generations are judged by the lineage's gains"
    assert check_jump(error, 0.0, [3.0, 0.0]) == [], "no gain over a perfect champion"
    assert check_jump(error, -0.5, [3.0]), "beyond a perfect score is one too"


def test_the_perfect_value_is_inferred_set_or_switched_off():
    assert perfect_value(spec(), 0.5) == 1.0
    assert perfect_value(spec(), 3.0) is None, "a maximized metric past 1 has no known perfect value"
    loss = {"metric": "loss", "goal": "minimize"}
    assert perfect_value(spec(objective=loss), 2.0) == 0.0
    assert perfect_value(spec(objective=loss), -2.0) is None, "a log-likelihood can go below 0"
    assert perfect_value(spec(objective=loss, oversight={"perfect": 1.0}), 2.0) == 1.0
    off = spec(objective=loss, oversight={"perfect": None, "max_relative_gain": None})
    assert check_jump(off, 0.0, [3.0]) == []
    no_ratio = spec(objective=loss, oversight={"max_gain_ratio": None, "max_relative_gain": None})
    assert check_jump(no_ratio, 0.001, [3.0]) == [] and check_jump(no_ratio, 0.0, [3.0])


def test_guards_min_max_and_regression():
    s = spec(guards=[{"metric": "params", "max": 1000},
                     {"metric": "slice_acc", "min": 0.5, "max_regression": 0.02},
                     {"metric": "ece", "goal": "minimize", "max_regression": 0.01}])
    champion = {"params": 500, "slice_acc": 0.80, "ece": 0.05}
    ok = {"params": 900, "slice_acc": 0.79, "ece": 0.055}
    assert check_guards(s, ok, champion) == []
    bad = {"params": 2000, "slice_acc": 0.70, "ece": 0.07}
    found = check_guards(s, bad, champion)
    assert [f.rule for f in found] == ["guard"] * 3 and all(f.severity == "high" for f in found)
    assert "above its maximum" in found[0].message and "regresses by 0.1" in found[1].message
    assert "regresses by 0.02" in found[2].message


def test_guards_missing_or_nan_metric_breaks_the_guard():
    s = spec(guards=[{"metric": "params", "max": 1000}, {"metric": "ece", "min": 0}])
    found = check_guards(s, {"ece": math.nan}, {})
    assert ["did not report" in found[0].message, "nan" in found[1].message] == [True, True]


def test_guard_regression_without_a_champion_value_is_skipped():
    s = spec(guards=[{"metric": "ece", "goal": "minimize", "max_regression": 0.01}])
    assert check_guards(s, {"ece": 0.5}, {}) == []
