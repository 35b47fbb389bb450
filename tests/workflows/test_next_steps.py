"""What a run tells its user to do next, and what it shows while it works: the champion's
git commands, the README's lineage command, the status table, the live board on a terminal
and plain lines elsewhere. Every command printed here is run, on a real lineage."""

from __future__ import annotations

import io
import re
import shlex
import subprocess
from pathlib import Path

import git
import pytest
from click.testing import CliRunner
from rich.console import Console

import progenitor
from progenitor.cli import cli
from progenitor.cli.progress import Progress
from progenitor.options import RunOptions
from progenitor.testing import make_repo, scripted, toy_task_files

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished toy run (2 generations x 2 candidates) and the CLI's output."""
    repo = make_repo(tmp_path_factory.mktemp("lineage") / "repo", toy_task_files())
    result = CliRunner().invoke(cli, ["run", str(repo), "--executor", "local", "--sandbox", "process", "-q"])
    assert result.exit_code == 0, result.output
    run_id = next((repo / ".progenitor" / "runs").iterdir()).name
    return repo, run_id, result.output


@pytest.mark.loop
def test_a_finished_run_says_how_to_take_its_champion_and_the_command_works(finished, tmp_path):
    repo, run_id, output = finished
    merge = re.search(r"^take the champion into your branch: (git .*)$", output, re.MULTILINE).group(1)
    branch = re.search(r"^  or keep it on a branch of its own: (git .*)$", output, re.MULTILINE).group(1)
    adopt = re.search(r"^  or adopt it, recorded in the audit log: (progenitor .*)$", output, re.MULTILINE).group(1)
    assert adopt == f"progenitor adopt {run_id} --repo {repo}"
    assert merge == f"git -C {repo} merge refs/progenitor/{run_id}/champion"
    clone = tmp_path / "clone"  # the commands are tried on a clone: the module's repo stays as the run left it
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "fetch", "-q", str(repo), "refs/progenitor/*:refs/progenitor/*"], check=True)
    champion = git.Repo(repo).commit(f"refs/progenitor/{run_id}/champion").hexsha
    subprocess.run(shlex.split(branch.replace(str(repo), str(clone)).replace("<name>", "tuned")), check=True)
    assert git.Repo(clone).commit("tuned").hexsha == champion
    subprocess.run(shlex.split(merge.replace(str(repo), str(clone))), check=True, capture_output=True)
    assert git.Repo(clone).head.commit.hexsha == champion  # the champion descends from HEAD: a fast-forward


@pytest.mark.loop
def test_a_run_that_beat_nothing_says_there_is_nothing_to_take(tmp_path):
    repo = make_repo(tmp_path / "repo", toy_task_files(generations=1, candidates=1, w=3.0))
    script = [[{"hypothesis": "worse", "params": {"w": 5.0}}]]
    summary = progenitor.start_run(repo, RunOptions(executor="local", sandbox="process"), architect=scripted(script))
    from progenitor.workflows.advice import take_champion

    assert take_champion(summary.repo, summary.run_id, summary.champion_commit) == [
        "no candidate beat the baseline: the champion is the commit the run started from; nothing to take"]


def test_the_readme_lineage_command_shows_only_the_candidates(finished):
    repo, run_id, _ = finished
    every, one_run = [line for line in README.read_text().splitlines() if line.startswith("git log --notes=progenitor")]
    candidates = {git.Repo(repo).commit(f"refs/progenitor/{run_id}/g{g}/c{k}").hexsha for g in (1, 2) for k in (0, 1)}
    for line in (every, one_run.replace("RUN", run_id)):
        command = shlex.split(line.split("#")[0])
        out = subprocess.run([*command, "--format=%H %s%n%N"], cwd=repo, capture_output=True, text=True, check=True).stdout
        shown = re.findall(r"^([0-9a-f]{40}) (.*)$", out, re.MULTILINE)
        assert {sha for sha, _ in shown} == candidates, out
        assert not any("Notes added by" in subject or subject == "baseline" for _, subject in shown)
        assert out.count('"decision"') == len(candidates), "each candidate with its record"


def test_status_never_cuts_a_run_id_at_80_columns(finished):
    repo, run_id, _ = finished
    run_dir = repo / ".progenitor" / "runs" / run_id
    meta = (run_dir / "run.json").read_text()
    (run_dir / "run.json").write_text(meta.replace('"stop_reason": "budget: 2 generations done"',
                                                   '"stop_reason": "' + "a long reason, " * 8 + '"'))
    try:
        result = CliRunner().invoke(cli, ["status", "--repo", str(repo)], env={"COLUMNS": "80"})
    finally:
        (run_dir / "run.json").write_text(meta)
    assert result.exit_code == 0, result.output
    assert run_id in result.output, result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80


def _run_with(console: Console, repo: Path) -> None:
    with Progress(console) as progress:
        progenitor.start_run(repo, RunOptions(generations=1, candidates=2, executor="local", sandbox="process"),
                             on_event=progress.on_event)


@pytest.mark.loop
def test_a_terminal_gets_a_live_board(tmp_path):
    buf = io.StringIO()
    _run_with(Console(file=buf, force_terminal=True, width=140), make_repo(tmp_path / "repo", toy_task_files()))
    out = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buf.getvalue())  # the board's frames, without cursor moves
    assert "generation 1 of 1" in out and "best error" in out and "elapsed" in out
    assert re.search(r"g1/c[01]\s.*(proposed|queued|training|trained|scored)", out)
    assert "g1/c0 proposed:" not in out, "a candidate's progress is on the board, not a line of its own"
    assert "baseline scored:" in out and "g1 decision" in out  # what matters is still a line above it


@pytest.mark.loop
def test_a_pipe_gets_plain_lines(tmp_path):
    buf = io.StringIO()
    _run_with(Console(file=buf, force_terminal=False, width=140), make_repo(tmp_path / "repo", toy_task_files()))
    out = buf.getvalue()
    assert "\x1b" not in out
    assert "g1/c0 proposed:" in out and "g1/c1 scored" in out and "baseline scored:" in out
    assert "elapsed" not in out, "no board off a terminal"
