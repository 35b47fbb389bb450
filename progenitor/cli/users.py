"""``progenitor users``: the accounts of the people who may use the approval page and decide,
in a model repo's store or a team's (``--store``). Whoever can write the store (the repo's
owner, the server's database user) manages them; a token is printed once and kept hashed."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from progenitor.cli.errors import Group
from progenitor.cli.oversight import STORE

_REPO = dict(type=click.Path(file_okay=False, exists=True, path_type=Path), default=Path("."), show_default=True,
             help="The model repo whose store holds the accounts (with no --store).")


def _store(repo: Path, store: Optional[str]):
    from progenitor.oversight.store import DecisionStore

    return DecisionStore(repo, store)


def _issued(name: str, role: str, token: str, where: str) -> None:
    click.echo(f"account {name} ({role}) in {where}; its token, shown this once (keep it secret):")
    click.echo(token)
    click.echo("sign in: open the page's address with ?token=<token>, or paste it into the sign-in form; "
               "from a shell: PROGENITOR_TOKEN=<token> progenitor approve RUN")


@click.group(cls=Group)
def users() -> None:
    """Accounts: who may see the page (viewer), decide (approver), revert and manage accounts (admin)."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["viewer", "approver", "admin"]), required=True)
@click.option("--repo", **_REPO)
@click.option("--store", **STORE)
def add(name: str, role: str, repo: Path, store: Optional[str]) -> None:
    """Make the account NAME with ROLE and print its token."""
    from progenitor.oversight import accounts
    from progenitor.oversight.decide import actor

    where = _store(repo, store)
    _issued(name, role, accounts.add(where, name, role, by=actor(None)), where.where)


@users.command("renew")
@click.argument("name")
@click.option("--role", type=click.Choice(["viewer", "approver", "admin"]), default=None,
              help="Also give the account this role.")
@click.option("--repo", **_REPO)
@click.option("--store", **STORE)
def renew(name: str, role: Optional[str], repo: Path, store: Optional[str]) -> None:
    """Give NAME a new token (the old one stops working at once, its sessions end)."""
    from progenitor.oversight import accounts

    where = _store(repo, store)
    token = accounts.renew(where, name, role)
    _issued(name, accounts.find(where, name).role, token, where.where)


@users.command("remove")
@click.argument("name")
@click.option("--repo", **_REPO)
@click.option("--store", **STORE)
def remove(name: str, repo: Path, store: Optional[str]) -> None:
    """Remove the account NAME (signed out at once; its past decisions stay in the audit log)."""
    from progenitor.oversight import accounts

    gone = accounts.remove(_store(repo, store), name)
    click.echo(f"removed account {gone.name} ({gone.role})")


@users.command("list")
@click.option("--repo", **_REPO)
@click.option("--store", **STORE)
def list_users(repo: Path, store: Optional[str]) -> None:
    """Every account with its role."""
    from progenitor.oversight import accounts

    found = accounts.users(_store(repo, store))
    if not found:
        click.echo("no accounts yet: progenitor users add NAME --role approver")
    for a in found:
        click.echo(f"{a.name}\t{a.role}\tmade {a.created} by {a.created_by}")
