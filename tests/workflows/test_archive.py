"""Search past the champion in whole runs: parents drawn from the lineage (any node can have
children), a lesson in every candidate's note, a finished run continued warm without training
anything again, and a later run that reads the lessons of the runs before it."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import progenitor
from progenitor.cli import cli
from progenitor.compute import register_executor
from progenitor.lineage import Lineage
from progenitor.options import RunOptions
from progenitor.run.rundir import RunDir
from progenitor.testing import FakeExecutor, make_repo, toy_task_files
from progenitor.ui.views import _generations
from tests.helpers.llm_helpers import KEY_VAR, draft, edit, llm_section, proposals

pytestmark = pytest.mark.loop  # runs the loop or a sandbox end to end: `make test` runs it, `make test-fast` does not

PLAYED: list[str] = []


class _Recording(FakeExecutor):
    """The fake executor, remembering every training it played across runs of a test."""

    def _play(self, job):
        PLAYED.append(job.key)
        return super()._play(job)


@pytest.fixture(autouse=True)
def setup(monkeypatch):
    PLAYED.clear()
    monkeypatch.setenv(KEY_VAR, "sk-test-archive-0000")
    register_executor("recording", _Recording)


FAST = RunOptions(executor="recording", sandbox="process", seed=3)
ARCHIVE = "search: {parents: archive, local: 0.5}\n"


def test_archive_parents_lessons_and_a_continued_run(tmp_path):
    files = toy_task_files(generations=2, candidates=3, test_split=True, oversight="perfect: null")
    files["progenitor.yaml"] += ARCHIVE
    repo = make_repo(tmp_path / "repo", files)
    first = progenitor.start_run(repo, FAST)
    run = RunDir(repo, first.run_id)
    lineage = progenitor.get_lineage(first.run_id, repo)
    by_sha = {c.sha: c for c in lineage.candidates}
    shas = {lineage.base, *by_sha}
    for cand in lineage.candidates:
        assert cand.parent in shas and cand.step == "improve"
        assert cand.parent_name == ("g0/c0" if cand.parent == lineage.base else by_sha[cand.parent].key.name)
        assert cand.lesson is not None and cand.lesson.by == "search" and cand.lesson.parent == cand.parent_name
        note = Lineage(repo).read_note(cand.sha)
        assert note["lesson"]["verdict"] == cand.lesson.verdict and note["parent_name"] == cand.parent_name
    drawn = json.loads(run.parents(2).read_text())
    assert len(drawn) == 3 and {p["name"] for p in drawn} <= {"g0/c0", *(c.key.name for c in lineage.candidates)}
    # The page's lineage names, for every candidate, the node it was built on.
    folded = _generations([c.record() for c in lineage.candidates], "accuracy", "maximize", set())
    shown = {n["name"]: n["parent"] for g in folded for n in g["nodes"]}
    assert shown == {c.key.name: ("baseline" if c.parent == lineage.base else by_sha[c.parent].key.name)
                     for c in lineage.candidates}
    lessons = [e for e in run.events() if e.type == "architect.lesson"]
    assert len(lessons) == 6 and all(e.text for e in lessons)

    trained = list(PLAYED)
    more = progenitor.continue_run(first.run_id, repo, generations=1)
    assert more.run_id == first.run_id and more.status == "finished" and more.generations == 3
    assert more.baseline == first.baseline and more.honesty.baseline_test == first.honesty.baseline_test
    assert PLAYED[: len(trained)] == trained and len(PLAYED) == len(trained) + 3, "only generation 3 trained"
    assert len(set(PLAYED)) == len(PLAYED), "no training was repeated"
    again = progenitor.get_lineage(first.run_id, repo)
    assert {c.gen for c in again.candidates} == {1, 2, 3}
    assert [e.type for e in run.events()].count("run.continue") == 1
    assert json.loads((run.path / "run.json").read_text())["continued"] == [{"after": 2, "generations": 1}]


def test_continue_refuses_a_run_that_did_not_finish_and_the_cli_says_so(tmp_path):
    repo = make_repo(tmp_path / "repo", toy_task_files(generations=1, candidates=1))
    summary = progenitor.start_run(repo, FAST)
    RunDir(repo, summary.run_id).update_meta(status="stopped")
    result = CliRunner().invoke(cli, ["run", str(repo), "--continue", summary.run_id, "-q"])
    assert result.exit_code == 2 and f"progenitor resume {summary.run_id}" in result.output
    result = CliRunner().invoke(cli, ["run", str(repo), "--continue", summary.run_id, "--seed", "4"])
    assert result.exit_code == 2 and "--seed cannot change a run being continued" in result.output
    RunDir(repo, summary.run_id).update_meta(status="finished")
    result = CliRunner().invoke(cli, ["run", str(repo), "--continue", summary.run_id, "-g", "1", "-q",
                                      "--executor", "local"])
    assert result.exit_code == 0, result.output
    assert "baseline error:" in result.output and "champion error:" in result.output
    assert progenitor.run_status(summary.run_id, repo).summary.generations == 2


def test_a_later_run_reads_the_lessons_of_the_runs_before_it(tmp_path, llm_server):
    files = toy_task_files(generations=1, candidates=2, oversight="perfect: null")
    repo = make_repo(tmp_path / "repo", files)
    earlier = progenitor.start_run(repo, FAST)
    lessons = {c.key.name: c.lesson for c in progenitor.get_lineage(earlier.run_id, repo).candidates}
    # The second run asks a language model, on the same repository: its prompt holds the first run's lessons.
    spec = (repo / "progenitor.yaml").read_text() + llm_section(llm_server, agents="{architect: llm, coder: llm}")
    (repo / "progenitor.yaml").write_text(spec)
    Lineage(repo).git.commit("-qam", "ask a model", env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                                                          "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})
    llm_server.queue("arch", proposals(draft("w = 3 matches the slope", "set w to 3.0")),
                     json.dumps({"lessons": [{"candidate": "g1/c0", "verdict": "confirmed", "lesson": "w = 3 fits",
                                              "next": "try nothing else"}]}))
    llm_server.queue("coder", edit("config.yaml", "w: 1.0", "w: 3.0"))
    later = progenitor.start_run(repo, FAST)
    prompt = llm_server.requests_for("arch")[0].prompt
    assert "Earlier runs on this repository" in prompt and earlier.run_id in prompt
    for lesson in lessons.values():
        assert lesson.text in prompt
    (cand,) = progenitor.get_lineage(later.run_id, repo).candidates
    assert cand.lesson.by == "llm" and cand.lesson.text == "w = 3 fits" and cand.lesson.next == "try nothing else"
    reflect = llm_server.requests_for("arch")[1].prompt
    assert "built on g0/c0" in reflect and "Write one lesson per candidate" in reflect
    assert not llm_server.unexpected
