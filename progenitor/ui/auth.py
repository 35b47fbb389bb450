"""Who is using the page: every page but the sign-in form needs a person, and the person is
whoever signed in, never a name typed into a form.

Three ways in:

- **an account's token** (``progenitor users add NAME --role ROLE`` prints it once): opened as
  ``?token=...`` (then exchanged for a session cookie and taken out of the address bar by a
  redirect) or typed into the sign-in form;
- **the owner's link**: ``progenitor ui`` prints a link with a token of its own, made at start
  and kept only in memory, for the OS user who started it (an admin of their own page, the way
  Jupyter's link works);
- **a trusted proxy**: behind an organisation's authenticating proxy (oauth2-proxy and the like),
  the header it sets (``X-Forwarded-User`` by default) names the account, and is believed only
  when the request comes from one of the proxy addresses given (``--trusted-proxy``); from any
  other address it is ignored.

A session lives in this process's memory and is checked against its account on every request:
an account removed, or given a new token, is signed out at once.
"""

from __future__ import annotations

import ipaddress
import secrets
import threading
from typing import Optional

from pydantic import BaseModel

from progenitor.oversight import accounts
from progenitor.oversight.accounts import Identity

__all__ = ["Auth", "Session"]


class Session(BaseModel):
    name: str
    role: str
    via: str
    token_sha256: Optional[str] = None
    """The account's token hash when signed in (a renewed token ends the session); None: the owner."""


def _networks(addresses: list[str]) -> list:
    nets = []
    for text in addresses:
        try:
            nets.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            from progenitor.errors import UserError

            raise UserError(f"--trusted-proxy takes an IP address or network (10.0.0.5, 10.0.0.0/24), not {text!r}") \
                from None
    return nets


class Auth:
    """The sign-in rules of one page server."""

    def __init__(self, store, owner: Optional[str], proxies: Optional[list[str]] = None,
                 user_header: str = "X-Forwarded-User"):
        self.store = store
        self.owner_name = owner
        self.owner_token = secrets.token_urlsafe(24) if owner else None
        self.proxies = _networks(proxies or [])
        self.user_header = user_header.lower()
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    # -- where a request comes from ----------------------------------------------------------
    def from_proxy(self, peer: Optional[str]) -> bool:
        """Is ``peer`` (the TCP peer's address) one of the trusted proxies?"""
        if not peer or not self.proxies:
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in net for net in self.proxies)

    # -- signing in --------------------------------------------------------------------------
    def sign_in(self, token: Optional[str]) -> Optional[str]:
        """A new session for whoever ``token`` belongs to (the owner, or an account); None if nobody."""
        if not token:
            return None
        if self.owner_token and secrets.compare_digest(token.encode("utf-8", "surrogatepass"),
                                                       self.owner_token.encode()):
            return self._start(Session(name=self.owner_name, role="admin", via="owner"))
        try:
            who = accounts.authenticate(self.store, token)
        except accounts.NotAllowed:
            return None
        return self._start(Session(name=who.name, role=who.role, via="token", token_sha256=accounts.hash_token(token)))

    def _start(self, session: Session) -> str:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[sid] = session
        return sid

    def sign_out(self, sid: Optional[str]) -> None:
        with self._lock:
            self._sessions.pop(sid or "", None)

    # -- who is this ---------------------------------------------------------------------------
    def identify(self, peer: Optional[str], headers: dict, sid: Optional[str]) -> Optional[Identity]:
        """The person behind a request: the trusted proxy's user, else the session's; None: nobody."""
        if self.from_proxy(peer):
            name = (headers.get(self.user_header) or "").strip().lower()
            if name:
                now = accounts.current(self.store, name)
                return now.model_copy(update={"via": "proxy"}) if now else None
        with self._lock:
            session = self._sessions.get(sid or "")
        if session is None:
            return None
        if session.via == "owner":
            return Identity(name=session.name, role="admin", via="owner")
        now = accounts.current(self.store, session.name, session.token_sha256)
        if now is None:
            self.sign_out(sid)  # removed, or a new token since: signed out
        return now

    def unknown_proxy_user(self, peer: Optional[str], headers: dict) -> Optional[str]:
        """The name a trusted proxy sent that no account has (for the page to say so)."""
        if not self.from_proxy(peer):
            return None
        name = (headers.get(self.user_header) or "").strip().lower()
        return name if name and accounts.current(self.store, name) is None else None
