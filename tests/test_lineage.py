from __future__ import annotations

import git
import pytest

from progenitor.agents.base import AgentContext, Proposal
from progenitor.agents.offline_coder import OfflineCoder, read_params, write_config
from progenitor.keys import CandidateKey
from progenitor.errors import UserError
from progenitor.lineage import Lineage
from progenitor.spec import load_spec
from progenitor.testing import make_repo, toy_task_files


def test_candidate_commit_on_its_ref_leaves_user_state_alone(toy_repo):
    lineage = Lineage(toy_repo)
    repo = git.Repo(toy_repo)
    (toy_repo / "scratch.txt").write_text("uncommitted work of the user\n")
    head, branch = lineage.head(), repo.active_branch.name
    coder = OfflineCoder(AgentContext(spec=load_spec(toy_repo), run_id="r1", workdir=toy_repo))
    proposal = Proposal(gen=1, k=0, hypothesis="w closer to 3", params={"w": 2.5})
    ref = CandidateKey(run="r1", gen=1, k=0).ref
    sha = lineage.commit_candidate(ref, head, lambda tree: coder.apply(proposal, tree).message)
    assert lineage.resolve(ref) == sha
    commit = repo.commit(sha)
    assert [p.hexsha for p in commit.parents] == [head]
    assert commit.message.startswith("g1/c0: w closer to 3")
    assert "w: 2.5" in lineage.show(sha, "config.yaml")
    assert "# the weight" in lineage.show(sha, "config.yaml"), "comments of the human survive"
    # the user's branch, HEAD, index and working tree are untouched
    assert repo.head.commit.hexsha == head and repo.active_branch.name == branch
    assert (toy_repo / "config.yaml").read_text() == toy_task_files()["config.yaml"]
    assert (toy_repo / "scratch.txt").exists() and not repo.is_dirty(untracked_files=False)
    assert repo.git.worktree("list").count("\n") == 0, "temporary worktrees are removed"
    # idempotent: a resumed run gets the same commit and the edit is not redone
    again = lineage.commit_candidate(ref, head, lambda tree: pytest.fail("edited twice"))
    assert again == sha
    assert lineage.changed_files(head, sha) == [{"path": "config.yaml", "status": "M"}]


def test_notes_round_trip_and_keep_history(toy_repo):
    lineage = Lineage(toy_repo)
    head = lineage.head()
    lineage.write_note(head, {"status": "committed"})
    lineage.write_note(head, {"status": "scored", "metrics": {"error": 0.1}})
    assert lineage.read_note(head) == {"status": "scored", "metrics": {"error": 0.1}}
    log = git.Repo(toy_repo).git.log("--notes=progenitor", "-1")
    assert '"status": "scored"' in log
    history = git.Repo(toy_repo).git.log("--oneline", "refs/notes/progenitor")
    assert len(history.splitlines()) == 2, "every version of a record is kept in the notes ref"


def test_directory_inside_another_repo_is_refused(tmp_path):
    outer = make_repo(tmp_path / "outer", {"README": "x\n"})
    inner = outer / "examples" / "digits"
    inner.mkdir(parents=True)
    with pytest.raises(UserError) as err:
        Lineage(inner)
    assert "not the root of a git repository" in str(err.value)


def test_repo_without_commit_is_refused(tmp_path):
    git.Repo.init(tmp_path)
    with pytest.raises(UserError, match="no commit yet"):
        Lineage(tmp_path)


def test_archive_has_no_git_dir(toy_repo, tmp_path):
    lineage = Lineage(toy_repo)
    dest = lineage.export(lineage.head(), tmp_path / "copy")
    assert (dest / "train.py").exists() and not (dest / ".git").exists()


@pytest.mark.parametrize("name,text,check", [
    ("c.json", '{"model": {"hidden": 8}, "lr": 0.1}\n', '"hidden": 64'),
    ("c.toml", "lr = 0.1\n[model]\nhidden = 8\n", "hidden = 64"),
    ("c.yaml", "lr: 0.1  # why\nmodel:\n  hidden: 8\n", "hidden: 64"),
])
def test_write_config_formats(tmp_path, name, text, check):
    path = tmp_path / name
    path.write_text(text)
    write_config(path, {"model.hidden": 64, "lr": 0.01})
    written = path.read_text()
    assert check in written and "0.01" in written


def test_read_params(toy_repo):
    assert read_params(toy_repo, load_spec(toy_repo)) == {"w": 1.0}
