"""Who may use the approval page, and how a cross-site request is refused.

- The page binds to loopback by default; any other address needs a token (``--token``, or
  ``--token auto`` to have one made, printed in a URL the way Jupyter does). Opening that URL
  once sets a cookie; a request without either is refused.
- On loopback, the ``Host`` header must name loopback too, so a web site that points its own
  name at 127.0.0.1 (DNS rebinding) is refused.
- Every POST carries a CSRF token tied to the browser's session cookie (an HMAC of it with a
  key made when the server starts) and must come from the page's own origin when the browser
  says where it comes from (``Origin``, else ``Referer``).
Cookies are named by port: browsers share cookies between the ports of one host.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from typing import Optional
from urllib.parse import urlsplit

from progenitor.errors import UserError

__all__ = ["Guard", "check_bind", "is_loopback"]


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: Optional[str]) -> Optional[str]:
    """The token the page will ask for (None: no token), or a ``UserError`` for an exposed page without one."""
    if token == "auto":
        token = secrets.token_urlsafe(24)
    if not is_loopback(host) and not token:
        raise UserError(f"binding the page to {host} exposes it beyond this machine; pass --token TOKEN "
                        f"(or --token auto to have one made)")
    return token or None


class Guard:
    """The checks of one server: its keys, its token, its port."""

    def __init__(self, host: str, port: int, token: Optional[str]):
        self.host, self.port, self.token = host, port, token
        self._key = secrets.token_bytes(32)
        self.session_cookie = f"progenitor_session_{port}"
        self.auth_cookie = f"progenitor_auth_{port}"

    def _mac(self, what: str) -> str:
        return hmac.new(self._key, what.encode(), hashlib.sha256).hexdigest()

    def new_session(self) -> str:
        return secrets.token_urlsafe(24)

    def csrf(self, session: str) -> str:
        return self._mac("csrf:" + session)

    def auth_value(self) -> str:
        return self._mac("auth")

    def host_ok(self, host_header: str) -> bool:
        """On loopback, the browser must have asked for a loopback name (no DNS rebinding)."""
        if not is_loopback(self.host):
            return True
        name = host_header.rsplit(":", 1)[0] if not host_header.startswith("[") else host_header.split("]")[0] + "]"
        return is_loopback(name)

    def authorized(self, cookie: Optional[str], query_token: Optional[str]) -> bool:
        if self.token is None:
            return True
        if cookie and _same(cookie, self.auth_value()):
            return True
        return bool(query_token) and _same(query_token, self.token)

    def refuse_post(self, *, session: Optional[str], form_token: Optional[str], origin: Optional[str],
                    referer: Optional[str], host_header: str, scheme: str) -> Optional[str]:
        """Why a POST is refused (None: it is not)."""
        own = f"{scheme}://{host_header}"
        if origin is not None:
            if origin != own:
                return f"cross-site request refused: it comes from {origin}, not {own}"
        elif referer:
            parts = urlsplit(referer)
            if f"{parts.scheme}://{parts.netloc}" != own:
                return "cross-site request refused: its referer is another site"
        if not session or not form_token or not _same(form_token, self.csrf(session)):
            return "request refused: its CSRF token is missing or does not match this session; reload the page"
        return None


def _same(given: str, expected: str) -> bool:
    """A constant-time comparison that any text may reach: ``compare_digest`` refuses a str
    with non-ASCII characters (a TypeError, so a 500), bytes it takes whatever they hold."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))
