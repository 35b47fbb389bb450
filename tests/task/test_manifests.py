"""Dependency manifests: which files they are, and that an image is built from a candidate's only on a person's word."""

from __future__ import annotations

import os

import git
import pytest
from click.testing import CliRunner

from progenitor.candidate import Proposal
from progenitor.candidate.keys import CandidateKey
from progenitor.errors import UserError
from progenitor.lineage import IDENTITY, Lineage
from progenitor.sandbox.docker.images import check_dependencies
from progenitor.task.manifests import candidate_manifests, is_manifest
from progenitor.task.spec import load_spec
from progenitor.testing import make_repo, toy_task_files
from tests.helpers.coding import coder_edit


@pytest.mark.parametrize("path", [
    "requirements.txt", "requirements-gpu.txt", "dev-requirements.txt", "REQUIREMENTS.TXT", "sub/requirements.in",
    "requirements/base.txt", "constraints.txt", "pyproject.toml", "setup.py", "setup.cfg", "Pipfile",
    "Pipfile.lock", "poetry.lock", "uv.lock", "pdm.lock", "pixi.lock", "conda-lock.yml", "linux.conda-lock.yml",
    "pylock.toml", "environment.yml", "environment-cuda.yaml", "pip.conf",
])
def test_dependency_manifests_are_recognised_in_any_directory_and_case(path):
    assert is_manifest(path)


@pytest.mark.parametrize("path", ["train.py", "config.yaml", "README.md", "notes/requirements.md", "setup_data.py",
                                  "docs/environment.md"])
def test_other_files_are_not_manifests(path):
    assert not is_manifest(path)


@pytest.fixture
def adopted(tmp_path):
    """A model repo whose working copy is a candidate commit that changed requirements.txt
    (as after 'progenitor adopt'), with that candidate's ref and note."""
    files = {**toy_task_files(), "requirements.txt": "numpy\n"}
    repo = make_repo(tmp_path / "repo", files)
    lineage = Lineage(repo)
    proposal = Proposal(gen=1, k=0, hypothesis="a faster library", edits={"requirements.txt": "numpy\nfastmath-ai\n"})
    ref = CandidateKey(run="r20260101-deps", gen=1, k=0).ref
    sha = lineage.commit_candidate(ref, lineage.head(), coder_edit(proposal, load_spec(repo)))
    lineage.write_note(sha, {"status": "scored"})
    git.Repo(repo).git.checkout("--quiet", sha)
    return repo, sha, ref


def test_a_manifest_a_candidate_changed_last_is_named_with_its_ref(adopted):
    repo, sha, ref = adopted
    [found] = candidate_manifests(repo)
    assert (found.path, found.commit, found.ref) == ("requirements.txt", sha, ref)
    with pytest.raises(UserError) as err:
        check_dependencies(repo, approved=False, say=print)
    message = str(err.value)
    assert message.startswith(f"requirements.txt was last changed by a progenitor candidate ({ref} {sha[:10]})")
    assert "--approve-dependencies" in message and message.count(".") <= 2


def test_the_cli_refuses_before_it_touches_docker_and_the_flag_is_a_person_s_word(adopted):
    from progenitor.cli import cli

    repo, sha, _ = adopted
    result = CliRunner().invoke(cli, ["sandbox", "build", str(repo)])
    assert result.exit_code == 2 and "last changed by a progenitor candidate" in result.output, result.output
    said: list[str] = []
    check_dependencies(repo, approved=True, say=said.append)
    assert said and "approved by a person" in said[0] and sha[:10] in said[0]


def test_the_note_alone_marks_a_candidate_commit(adopted):
    repo, sha, ref = adopted
    git.Repo(repo).git.update_ref("-d", ref)
    assert [(m.path, m.ref) for m in candidate_manifests(repo)] == [("requirements.txt", "")]


def test_a_person_s_own_change_needs_no_flag(adopted):
    repo, _, _ = adopted
    (repo / "requirements.txt").write_text("numpy\n")  # uncommitted: the person at the working copy
    assert candidate_manifests(repo) == []
    r = git.Repo(repo)
    r.git.add("requirements.txt")
    r.git.commit("-qm", "back to numpy alone", env={**os.environ, "GIT_AUTHOR_NAME": "A Person",
                                                     "GIT_AUTHOR_EMAIL": "a@example.org",
                                                     "GIT_COMMITTER_NAME": "A Person",
                                                     "GIT_COMMITTER_EMAIL": "a@example.org"})
    assert candidate_manifests(repo) == []


def test_the_human_baseline_and_a_plain_directory_build_as_they_are(tmp_path):
    repo = make_repo(tmp_path / "repo", {**toy_task_files(), "requirements.txt": "numpy\n"})
    # The baseline is committed with progenitor's identity here, and still is not a candidate's.
    assert git.Repo(repo).head.commit.author.email == IDENTITY["GIT_AUTHOR_EMAIL"]
    assert candidate_manifests(repo) == []
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "requirements.txt").write_text("numpy\n")
    assert candidate_manifests(plain) == []
