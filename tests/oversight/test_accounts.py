"""People are accounts: ``progenitor users`` makes them with a role and a token shown once and
stored only hashed; a shell decides as the OS user or, with a token, as that account, and a
viewer's token decides nothing."""

from __future__ import annotations

import pytest

import progenitor
from progenitor.errors import NotAllowed, UserError
from progenitor.options import RunOptions
from progenitor.oversight import accounts
from progenitor.oversight.decide import default_person
from progenitor.oversight.store import DecisionStore
from progenitor.testing import scripted
from tests.helpers.gating import OPTIONS, cli, toy_repo


@pytest.mark.loop
def test_users_are_made_listed_renewed_and_removed_and_a_token_is_never_stored(tmp_path):
    repo = toy_repo(tmp_path / "repo", "approver")
    made = cli("users", "add", "alice", "--role", "approver", "--repo", str(repo))
    token = made.stdout.splitlines()[1]
    assert "account alice (approver)" in made.stdout and len(token) >= 40
    assert token.encode() not in (repo / ".progenitor" / "decisions.sqlite").read_bytes(), "only its hash is kept"
    assert accounts.authenticate(DecisionStore(repo), token).name == "alice"
    listed = cli("users", "list", "--repo", str(repo)).stdout
    assert "alice\tapprover\tmade" in listed and f"by human:{default_person()}" in listed
    renewed = cli("users", "renew", "alice", "--role", "viewer", "--repo", str(repo)).stdout.splitlines()[1]
    with pytest.raises(NotAllowed):
        accounts.authenticate(DecisionStore(repo), token)
    assert accounts.authenticate(DecisionStore(repo), renewed).role == "viewer"
    assert "removed account alice (viewer)" in cli("users", "remove", "alice", "--repo", str(repo)).stdout
    assert "no accounts yet" in cli("users", "list", "--repo", str(repo)).stdout


@pytest.mark.loop
@pytest.mark.parametrize("args, says", [
    (["add", "Not A Name", "--role", "viewer"], "an account name is"),
    (["add", "bob", "--role", "viewer"], "there is an account 'bob' already"),
    (["remove", "nobody"], "no account 'nobody'"),
])
def test_bad_account_commands_are_one_sentence_and_exit_2(tmp_path, args, says):
    repo = toy_repo(tmp_path / "repo", "approver")
    accounts.add(DecisionStore(repo), "bob", "viewer", by="human:test")
    done = cli("users", *args, "--repo", str(repo), check=False)
    lines = [x for x in done.stderr.splitlines() if x.strip()]
    assert done.returncode == 2 and len(lines) == 1 and says in lines[0]


@pytest.mark.loop
def test_a_shell_decides_as_the_os_user_or_as_the_account_of_its_token_and_a_viewer_cannot(tmp_path):
    repo = toy_repo(tmp_path / "repo", "approver", candidates=1)
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS), detach=True,
                                   architect=scripted([[{"hypothesis": "closer", "params": {"w": 2.9}}]]))
    store = DecisionStore(repo)
    viewer = accounts.add(store, "vic", "viewer", by="human:test")
    refused = cli("approve", summary.run_id, "--repo", str(repo), check=False, env={"PROGENITOR_TOKEN": viewer})
    assert refused.returncode == 2 and "vic is a viewer: to decide needs the role approver" in refused.stderr
    unknown = cli("approve", summary.run_id, "--repo", str(repo), "--token", "made-up", check=False)
    assert unknown.returncode == 2 and "belongs to no account" in unknown.stderr
    assert progenitor.pending(summary.run_id, repo=repo), "nothing was decided"
    done = cli("approve", summary.run_id, "--repo", str(repo))
    assert f"approve by human:{default_person()} recorded" in done.stdout
    by = cli("approve", summary.run_id, "--repo", str(repo), "--by", "alice", check=False)
    assert by.returncode == 2 and "No such option '--by'" in by.stderr, "a shell cannot type someone else's name"


def test_roles_allow_what_the_one_before_does_and_more():
    assert accounts.may("viewer", "view") and not accounts.may("viewer", "decide")
    assert accounts.may("approver", "decide") and not accounts.may("approver", "revert")
    assert accounts.may("admin", "manage") and accounts.may("admin", "decide")
    with pytest.raises(UserError):
        accounts._check_role("owner")
