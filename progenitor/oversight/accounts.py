"""The people who may use the approval page and decide: accounts with a role and a token of
their own, kept in the decision store (a repo's own, or a team server's).

Roles, each allowed what the one before is: ``viewer`` sees runs, candidates, the inbox and the
audit log; ``approver`` also decides at gates; ``admin`` also reverts generations and manages
accounts. A token is 32 random bytes, shown once when the account is made (or its token
renewed) and stored only as its SHA-256: with that much randomness a slow password hash adds
nothing, and the store never holds what would let its reader sign in.

Who decides is the account that signed in (or the OS user, from a shell), never a name typed
into a form.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Literal, Optional

from pydantic import BaseModel

from progenitor.errors import NotAllowed, UserError
from progenitor.run.rundir import now_iso

__all__ = ["ROLES", "Account", "Identity", "Role", "add", "authenticate", "current", "find", "hash_token", "may",
           "remove", "renew", "require", "users"]

Role = Literal["viewer", "approver", "admin"]
ROLES: tuple[str, ...] = ("viewer", "approver", "admin")
ACTIONS = {"view": "viewer", "decide": "approver", "revert": "admin", "manage": "admin"}
"""The least role each kind of act needs."""
_NAME = re.compile(r"^[a-z0-9][a-z0-9._@+-]{0,62}$")


class Account(BaseModel):
    name: str
    role: Role
    created: str
    created_by: str


class Identity(BaseModel):
    """Who is acting, as a surface established it."""

    name: str
    """The account's name, or the OS user's."""
    role: Role
    via: Literal["token", "proxy", "owner", "os", "api"]
    """How it was established: an account's token, a trusted proxy's header, the page's owner
    link (the OS user who started it), a shell's OS user, the Python API's caller."""

    @property
    def actor(self) -> str:
        return f"human:{self.name}"


def may(role: str, act: str) -> bool:
    """May ``role`` do ``act`` (view, decide, revert, manage)?"""
    return ROLES.index(role) >= ROLES.index(ACTIONS[act])


def require(identity: Identity, act: str) -> None:
    if not may(identity.role, act):
        raise NotAllowed(f"{identity.name} is a {identity.role}: to {act} needs the role {ACTIONS[act]} at least")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _check_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise UserError(f"an account name is 1-63 lower-case letters, digits, '.', '_', '-', '@' or '+', starting "
                        f"with a letter or digit (it is the name in an allowed-signers file too), not {name!r}")
    return name


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    return role


def add(store, name: str, role: str, by: str) -> str:
    """Make an account; returns its token (shown once: only its hash is kept)."""
    _check_name(name)
    _check_role(role)
    token = secrets.token_urlsafe(32)
    with store._connect() as db:
        try:
            db.execute("INSERT INTO accounts (name, role, token_sha256, created, created_by) VALUES (?, ?, ?, ?, ?)",
                       (name, role, hash_token(token), now_iso(), by))
        except store.db.integrity_errors:
            raise UserError(f"there is an account {name!r} already (renew its token, or remove it first)") from None
    return token


def renew(store, name: str, role: Optional[str] = None) -> str:
    """A new token for ``name`` (the old one stops working at once), and a new role if given."""
    account = find(store, name)
    token = secrets.token_urlsafe(32)
    with store._connect() as db:
        db.execute("UPDATE accounts SET token_sha256 = ?, role = ? WHERE name = ?",
                   (hash_token(token), _check_role(role) if role else account.role, name))
    return token


def remove(store, name: str) -> Account:
    account = find(store, name)
    with store._connect() as db:
        db.execute("DELETE FROM accounts WHERE name = ?", (name,))
    return account


def users(store) -> list[Account]:
    if not store._readable():
        return []
    with store._connect() as db:
        return [Account(**r) for r in db.execute(
            "SELECT name, role, created, created_by FROM accounts ORDER BY name").fetchall()]


def find(store, name: str) -> Account:
    if store._readable():
        with store._connect() as db:
            row = db.execute("SELECT name, role, created, created_by FROM accounts WHERE name = ?", (name,)).fetchone()
        if row is not None:
            return Account(**row)
    raise NotAllowed(f"no account {name!r} in {store.where}")


def authenticate(store, token: Optional[str]) -> Identity:
    """The account whose token this is; ``NotAllowed`` for no token or an unknown one."""
    if not token:
        raise NotAllowed("no token given")
    if store._readable():
        with store._connect() as db:
            row = db.execute("SELECT name, role FROM accounts WHERE token_sha256 = ?", (hash_token(token),)).fetchone()
        if row is not None:
            return Identity(name=row["name"], role=row["role"], via="token")
    raise NotAllowed(f"that token belongs to no account of {store.where}")


def current(store, name: str, token_sha256: Optional[str] = None) -> Optional[Identity]:
    """The account ``name`` as it is now (None: removed, or its token renewed since ``token_sha256``)."""
    if not store._readable():
        return None
    with store._connect() as db:
        row = db.execute("SELECT name, role, token_sha256 FROM accounts WHERE name = ?", (name,)).fetchone()
    if row is None or (token_sha256 is not None and row["token_sha256"] != token_sha256):
        return None
    return Identity(name=row["name"], role=row["role"], via="token")
