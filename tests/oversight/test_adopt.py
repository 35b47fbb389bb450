"""``progenitor adopt``: a branch at the champion, created or fast-forwarded, never moved back,
never over uncommitted work, always in the audit log."""

from __future__ import annotations

import git
import pytest

import progenitor
from progenitor.errors import UserError
from progenitor.lineage import Lineage, champion_ref
from progenitor.options import RunOptions
from progenitor.oversight.audit import audit_log
from progenitor.oversight.decide import default_person
from progenitor.run.rundir import RunDir
from progenitor.testing import scripted
from tests.helpers.gating import OPTIONS, cli, toy_repo

pytestmark = pytest.mark.loop  # runs the loop or a sandbox end to end: `make test` runs it, `make test-fast` does not


@pytest.fixture
def finished(tmp_path):
    """An auto run on the toy task whose first generation promoted a candidate."""
    repo = toy_repo(tmp_path / "repo", "auto")
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS))
    assert summary.champion_commit != git.Repo(repo).head.commit.hexsha
    return repo, summary


def test_adopt_makes_a_branch_at_the_champion_and_records_it(finished):
    repo, summary = finished
    done = cli("adopt", summary.run_id, "--repo", str(repo), "--branch", "better")
    assert "created branch better" in done.stdout
    r = git.Repo(repo)
    assert r.commit("better").hexsha == summary.champion_commit
    assert r.active_branch.name == "main" and r.head.commit.message.strip() == "baseline", "main did not move"
    [entry] = [e for e in audit_log(repo).entries() if e["action"] == "adopt"]
    assert entry["actor"] == f"human:{default_person()}" and entry["commit"] == summary.champion_commit
    assert entry["payload_sha256"] and entry["comment"].startswith("branch better")
    again = progenitor.adopt(summary.run_id, "better", by="ines", repo=repo)
    assert not again.moved and len([e for e in audit_log(repo).entries() if e["action"] == "adopt"]) == 1


def test_adopt_fast_forwards_the_checked_out_branch(finished):
    repo, summary = finished
    done = progenitor.adopt(summary.run_id, "main", by="ines", repo=repo)
    r = git.Repo(repo)
    assert done.moved and done.previous and r.head.commit.hexsha == summary.champion_commit
    assert r.active_branch.name == "main" and not r.is_dirty(untracked_files=False)
    assert "w:" in (repo / "config.yaml").read_text() and (repo / "config.yaml").read_text() != "w: 1.0\n"


def test_adopt_refuses_a_dirty_tree(finished):
    repo, summary = finished
    (repo / "train.py").write_text("# local work\n")
    with pytest.raises(UserError, match="uncommitted changes"):
        progenitor.adopt(summary.run_id, "better", by="ines", repo=repo)
    assert Lineage(repo).resolve("refs/heads/better") is None


def test_adopt_never_moves_a_branch_backwards(finished):
    repo, summary = finished
    progenitor.adopt(summary.run_id, "better", by="ines", repo=repo)
    r = git.Repo(repo)
    ahead = r.git.commit_tree(f"{summary.champion_commit}^{{tree}}", "-p", summary.champion_commit, "-m", "own work")
    r.git.update_ref("refs/heads/better", ahead)
    refused = cli("adopt", summary.run_id, "--repo", str(repo), "--branch", "better", check=False)
    assert refused.returncode == 2 and "backwards or sideways" in refused.stderr
    assert r.commit("better").hexsha == ahead


def test_adopt_of_a_run_with_no_gain_says_so_and_makes_no_branch(finished):
    """Once a branch at the baseline was made and called the champion."""
    repo, summary = finished
    progenitor.adopt(summary.run_id, "better", by="ines", repo=repo)
    progenitor.revert(summary.run_id, 1, "not convinced", by="ines", repo=repo)
    assert Lineage(repo).resolve(champion_ref(summary.run_id)) == RunDir(repo, summary.run_id).meta["base"]
    for branch in ("better", "fresh"):
        refused = cli("adopt", summary.run_id, "--repo", str(repo), "--branch", branch, check=False)
        assert refused.returncode == 2, refused.stderr
        [line] = refused.stderr.strip().splitlines()
        assert f"run {summary.run_id} has no gain to adopt: no candidate beat the baseline" in line
        assert "no branch was made" in line
    r = git.Repo(repo)
    assert r.commit("better").hexsha == summary.champion_commit and "fresh" not in [h.name for h in r.heads]
    assert len([e for e in audit_log(repo).entries() if e["action"] == "adopt"]) == 1


def test_adopt_of_a_run_that_beat_nothing_makes_no_branch(tmp_path):
    repo = toy_repo(tmp_path / "repo", "auto")
    worse = scripted([[{"hypothesis": "far from the answer", "params": {"w": 6.0}},
                       {"hypothesis": "farther still", "params": {"w": -2.0}}]])
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS), architect=worse)
    assert summary.champion_commit == git.Repo(repo).head.commit.hexsha, "nothing was to beat the baseline"
    refused = cli("adopt", summary.run_id, "--repo", str(repo), check=False)
    assert refused.returncode == 2 and "has no gain to adopt" in refused.stderr and "Traceback" not in refused.stderr
    assert [h.name for h in git.Repo(repo).heads] == ["main"]
