from __future__ import annotations

import git
import pytest

from progenitor.agents.base import AgentContext
from progenitor.agents.coder.offline import OfflineCoder, read_params
from progenitor.candidate import Proposal
from progenitor.candidate.keys import CandidateKey
from progenitor.errors import CandidateError, ModelBehaviorError, UserError
from progenitor.lineage import Lineage
from progenitor.task.config_files import write_values
from progenitor.task.spec import load_spec
from progenitor.testing import make_repo, toy_task_files
from progenitor.workflows.nodes import written
from tests.helpers.coding import coder_edit


def test_candidate_commit_on_its_ref_leaves_user_state_alone(toy_repo):
    lineage = Lineage(toy_repo)
    repo = git.Repo(toy_repo)
    (toy_repo / "scratch.txt").write_text("uncommitted work of the user\n")
    head, branch = lineage.head(), repo.active_branch.name
    coder = OfflineCoder(AgentContext(spec=load_spec(toy_repo), run_id="r1", workdir=toy_repo))
    proposal = Proposal(gen=1, k=0, hypothesis="w closer to 3", params={"w": 2.5})
    ref = CandidateKey(run="r1", gen=1, k=0).ref
    sha = lineage.commit_candidate(ref, head, written(lambda tree: coder.apply(proposal, tree)))
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
    write_values(tmp_path, name, {"model.hidden": 64, "lr": 0.01})
    written = path.read_text()
    assert check in written and "0.01" in written


def test_read_params(toy_repo):
    assert read_params(toy_repo, load_spec(toy_repo)) == {"w": 1.0}


# --- a champion's links, git's own files and git's refusals fail one candidate, never the run ---

def _side_commit(lineage: Lineage, parent: str, change) -> str:
    """A commit on top of ``parent`` made with plain git, as a coder that can write links would."""
    return lineage.commit_candidate(CandidateKey(run="rprev", gen=1, k=9).ref, parent, change, "a champion with a link")


def _no_leftovers(repo_dir, before_status: str) -> None:
    repo = git.Repo(repo_dir)
    assert repo.git.worktree("list").count("\n") == 0, "temporary worktrees are removed"
    assert repo.git.status("--porcelain") == before_status, "the user's working copy is untouched"


@pytest.mark.parametrize("link", ["absolute-to-the-user-s-spec", "relative-out-of-the-tree", "inside-the-tree"])
def test_the_coder_never_writes_through_a_link_the_champion_holds(toy_repo, link):
    import os

    lineage = Lineage(toy_repo)
    spec = load_spec(toy_repo)
    user_spec = (toy_repo / "progenitor.yaml").read_text()
    status = git.Repo(toy_repo).git.status("--porcelain")
    target = {"absolute-to-the-user-s-spec": str(toy_repo / "progenitor.yaml"),
              "relative-out-of-the-tree": "../../../progenitor.yaml", "inside-the-tree": "train.py"}[link]

    def plant(tree):
        (tree / "config.yaml").unlink()
        os.symlink(target, tree / "config.yaml")
    champion = _side_commit(lineage, lineage.head(), plant)
    proposal = Proposal(gen=1, k=0, hypothesis="a value", params={"w": 2.0})
    ref = CandidateKey(run="r1", gen=2, k=0).ref
    for attempt in range(2):  # a resume tries again and fails the same way
        with pytest.raises(CandidateError, match="symbolic link"):
            lineage.commit_candidate(ref, champion, coder_edit(proposal, spec), "m")
    assert lineage.resolve(ref) is None
    assert (toy_repo / "progenitor.yaml").read_text() == user_spec
    assert "w: 2.0" not in lineage.show(champion, "train.py")
    _no_leftovers(toy_repo, status)


def test_an_edit_below_a_linked_directory_of_the_champion_is_refused(toy_repo, tmp_path):
    import os

    lineage = Lineage(toy_repo)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    champion = _side_commit(lineage, lineage.head(), lambda tree: os.symlink(str(outside), tree / "lib"))
    proposal = Proposal(gen=1, k=0, hypothesis="edit", edits={"lib/evil.py": "x = 1\n"})
    with pytest.raises(ModelBehaviorError, match="symbolic link 'lib'"):
        lineage.commit_candidate(CandidateKey(run="r1", gen=2, k=1).ref, champion,
                                 coder_edit(proposal, load_spec(toy_repo)), "m")
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("path", [".GIT/hooks/post-commit", "src/.Git/config", ".git./config", ".git /config",
                                  "GIT~1/config", ".git", ".git/HEAD"])
def test_an_edit_into_git_s_own_files_in_any_spelling_is_refused(toy_repo, path):
    lineage = Lineage(toy_repo)
    proposal = Proposal(gen=1, k=0, hypothesis="hook", edits={path: "#!/bin/sh\ntouch /tmp/pwned\n"})
    with pytest.raises(ModelBehaviorError, match="inside git's own files"):
        lineage.commit_candidate(CandidateKey(run="r1", gen=1, k=0).ref, lineage.head(),
                                 coder_edit(proposal, load_spec(toy_repo)), "m")
    _no_leftovers(toy_repo, "")


def test_a_path_git_refuses_fails_the_candidate_with_git_s_reason(toy_repo):
    lineage = Lineage(toy_repo)
    ref = CandidateKey(run="r1", gen=1, k=0).ref

    def sneak(tree):  # past every check of the coder, straight onto the disk
        (tree / ".GIT" / "hooks").mkdir(parents=True)
        (tree / ".GIT" / "hooks" / "post-commit").write_text("#!/bin/sh\n")
    for attempt in range(2):
        with pytest.raises(CandidateError) as err:
            lineage.commit_candidate(ref, lineage.head(), sneak, "m")
        assert str(err.value) == "git refused to commit the candidate: invalid path '.GIT/hooks/post-commit'"
    assert lineage.resolve(ref) is None
    _no_leftovers(toy_repo, "")


def test_nul_bytes_in_an_edit_path_or_a_message_fail_nothing_but_the_candidate(toy_repo):
    lineage = Lineage(toy_repo)
    spec = load_spec(toy_repo)
    bad = Proposal(gen=1, k=0, hypothesis="nul", edits={"train\0.py": "x"})
    with pytest.raises(ModelBehaviorError, match="NUL"):
        lineage.commit_candidate(CandidateKey(run="r1", gen=1, k=0).ref, lineage.head(), coder_edit(bad, spec), "m")
    ok = Proposal(gen=1, k=1, hypothesis="a \0 in the hypothesis", params={"w": 2.0})
    sha = lineage.commit_candidate(CandidateKey(run="r1", gen=1, k=1).ref, lineage.head(),
                                   coder_edit(ok, spec))
    assert git.Repo(toy_repo).commit(sha).message.startswith("g1/c1: a  in the hypothesis")


def test_changed_files_are_read_exactly_as_committed(toy_repo):
    lineage = Lineage(toy_repo)
    names = ["\u00e9t\u00e9.py", "tab\there.so", 'quote".py', "new\nline.txt"]
    proposal = Proposal(gen=1, k=0, hypothesis="odd names", edits={name: "x = 1\n" for name in names})
    sha = lineage.commit_candidate(CandidateKey(run="r1", gen=1, k=0).ref, lineage.head(),
                                   coder_edit(proposal, load_spec(toy_repo)), "m")
    assert sorted(c["path"] for c in lineage.changed_files(lineage.head(), sha)) == sorted(names)
    renamed = lineage.commit_candidate(CandidateKey(run="r1", gen=2, k=0).ref, sha, lambda t: (t / names[0]).rename(t / "b.py"), "mv")
    assert lineage.changed_files(sha, renamed) == [{"path": "b.py", "status": "R", "old_path": names[0]}]


def test_a_search_space_file_that_is_a_link_in_the_base_is_a_user_error(toy_repo):
    import os

    (toy_repo / "configs").mkdir()
    (toy_repo / "config.yaml").rename(toy_repo / "configs" / "small.yaml")
    os.symlink("configs/small.yaml", toy_repo / "config.yaml")
    with pytest.raises(UserError, match="search_space.file 'config.yaml' is a symbolic link"):
        read_params(toy_repo, load_spec(toy_repo))


def test_a_change_to_a_file_that_is_not_utf8_has_its_stats_and_fingerprint(tmp_path):
    """A base may hold Latin-1 text; a candidate that deletes or edits it is counted and hashed
    (git's diff comes back with lone surrogates, which a plain ``encode()`` refused: the driver
    died at the commit, and again on every resume)."""
    repo = make_repo(tmp_path / "repo", {"a.py": "x = 1\n"})
    (repo / "notes.txt").write_bytes("caf\xe9 cr\xe8me\n".encode("latin-1"))
    r = git.Repo(repo)
    r.git.add("-A")
    r.git.commit("-qm", "notes")
    base = r.head.commit.hexsha
    lineage = Lineage(repo)
    edited = lineage.commit_candidate("refs/progenitor/t/edit", base,
                                      lambda tree: (tree / "notes.txt").write_bytes("caf\xe9 noir\n".encode("latin-1")))
    deleted = lineage.commit_candidate("refs/progenitor/t/del", base, lambda tree: (tree / "notes.txt").unlink())
    stats = [lineage.diff_stats(base, sha) for sha in (edited, deleted)]
    assert [s["files"] for s in stats] == [1, 1] and all(len(s["fingerprint"]) == 16 for s in stats)
    assert stats[0]["fingerprint"] != stats[1]["fingerprint"]


@pytest.mark.parametrize("name, text", [("config.yaml", "lr: 1\nlr: 2\n"), ("config.yaml", "a: &x {lr: 1}\nb: *x\nlr: 1\nlr: 3\n")])
def test_a_config_the_round_trip_editor_refuses_is_one_sentence(tmp_path, name, text):
    """PyYAML reads a key given twice (the last wins); ruamel, which edits keeping comments,
    refuses it. The champion's config is a candidate's: its refusal is a ``UserError`` the
    candidate fails with, not a ``DuplicateKeyError`` that ended the run, and its resume."""
    (tmp_path / name).write_text(text)
    with pytest.raises(UserError, match=f"{name}: could not be edited: DuplicateKeyError"):
        write_values(tmp_path, name, {"lr": 0.5})
