"""The review judges what a candidate changed: findings on upstream lines it never touched are
shown once, when the run starts, and are not held against any candidate (issue 17, item 6)."""

from __future__ import annotations

import json

import pytest

import progenitor
from progenitor.compute import register_executor
from progenitor.options import RunOptions
from progenitor.testing import FakeExecutor, make_repo, scripted, toy_task_files
from progenitor.testing.repos import TOY_TRAIN

FAST = RunOptions(executor="fake", sandbox="process", seed=7)

UPSTREAM = TOY_TRAIN.replace("import yaml\n", "import hashlib\nimport yaml\n") + '''\
RUN_TAG = hashlib.md5(b"toy").hexdigest()  # bandit B324, high: upstream's own line
settings = {key: getattr(args, key) for key in vars(args)}  # a computed name: upstream's own line
'''
"""The toy task's train.py as an upstream repository might have it: two lines the review flags."""


@pytest.fixture(autouse=True)
def fake_executor():
    register_executor("fake", FakeExecutor)


def events(repo, run_id: str) -> list[dict]:
    path = repo / ".progenitor" / "runs" / run_id / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.loop
def test_upstream_findings_are_context_at_start_and_no_candidates_finding(tmp_path):
    files = toy_task_files(generations=2, candidates=2)
    files["train.py"] = UPSTREAM
    repo = make_repo(tmp_path / "repo", files)
    touched = UPSTREAM.replace('print(f"error:', 'print("trained")\nprint(f"error:')
    asserted = UPSTREAM.replace("w = float(config[\"w\"])\n", "w = float(config[\"w\"])\nassert w >= 0\n")
    copied = UPSTREAM + 'CHECK = hashlib.md5(b"again").hexdigest()\n'
    script = [
        # Generation 1: an honest change beside the upstream lines; one that adds a bandit-low line.
        [{"hypothesis": "log a line", "params": {"w": 2.0}, "edits": {"train.py": touched}},
         {"hypothesis": "check the weight", "params": {"w": 2.5}, "edits": {"train.py": asserted}}],
        # Generation 2, on the champion (which added the assert): a change elsewhere, and a new md5 line.
        [{"hypothesis": "closer", "params": {"w": 2.8}, "edits": {"train.py": asserted.replace("w >= 0", "w >= 0.0")}},
         {"hypothesis": "hash again", "params": {"w": 2.9}, "edits": {"train.py": copied}}],
    ]
    summary = progenitor.start_run(repo, FAST, architect=scripted(script))
    cands = {(c.gen, c.k): c.record() for c in progenitor.get_lineage(summary.run_id, repo=repo).candidates}

    base = [e for e in events(repo, summary.run_id) if e["type"] == "safety.base"]
    assert len(base) == 1, "the base's findings are shown once, when the run starts"
    assert {"bandit-B324", "computed-name"} <= set(base[0]["rules"]), base[0]
    assert any("train.py:" in line and "B324" in line for line in base[0]["shown"])

    def rules(key):  # the review's findings (the checks after scoring have no file)
        return [(f["rule"], f["line"]) for f in cands[key]["findings"] if f["file"]]

    assert cands[(1, 0)]["status"] == "scored" and rules((1, 0)) == [], "upstream lines are not its findings"
    assert cands[(1, 1)]["status"] == "scored" and [r for r, _ in rules((1, 1))] == ["bandit-B101"]
    assert cands[(1, 1)]["decision"]["verdict"] == "promoted"
    # Its child changed the assert line itself: that line's finding is the child's again.
    assert [r for r, _ in rules((2, 0))] == ["bandit-B101"]
    # A second copy of the upstream md5 line is new: found once, on the copy's line, and it blocks.
    copy_line = copied.count("\n")
    assert cands[(2, 1)]["status"] == "rejected" and ("bandit-B324", copy_line) in rules((2, 1)), rules((2, 1))
    assert [line for rule, line in rules((2, 1)) if rule == "bandit-B324"] == [copy_line]


def test_the_run_start_line_names_the_bases_findings_once():
    from rich.console import Console

    from progenitor.cli.progress import Progress
    from progenitor.run.events import SafetyBase, parse_event

    console = Console(record=True, width=200)
    event = SafetyBase(findings=2, rules={"bandit-B324": 1, "computed-name": 1},
                       shown=["train.py:18 bandit-B324 (high): bandit B324 ..."])
    assert parse_event(event.model_dump()) == event
    progress = Progress(console)
    progress.on_event(event)
    progress.on_event(SafetyBase(findings=0))
    text = console.export_text()
    assert "the base's own code has 2 review findings (bandit-B324 x1, computed-name x1): context only" in text
    assert "train.py:18 bandit-B324" in text and text.count("review findings") == 1
