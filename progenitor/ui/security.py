"""How the page refuses what does not come from itself, and where it may listen.

- The page binds to loopback by default. Any other address carries the sign-in tokens and the
  session cookies over the network, so it needs TLS (``--certfile``/``--keyfile``) or a proxy in
  front that terminates it (``--trusted-proxy``); else the command exits 2.
- On loopback, the ``Host`` header must name loopback too, so a web site that points its own
  name at 127.0.0.1 (DNS rebinding) is refused (a trusted proxy's requests name the public host).
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
from pathlib import Path
from typing import Optional
from urllib.parse import urlsplit

from progenitor.errors import UserError

__all__ = ["Guard", "check_bind", "is_loopback", "same"]


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, certfile: Optional[Path], keyfile: Optional[Path], proxies: list[str]) -> bool:
    """Whether the page serves TLS; a ``UserError`` for an exposed page that would send tokens in the clear."""
    if bool(certfile) != bool(keyfile):
        raise UserError("TLS needs both --certfile and --keyfile")
    tls = bool(certfile)
    if not is_loopback(host) and not tls and not proxies:
        raise UserError(f"binding the page to {host} over plain HTTP would send sign-in tokens and cookies in the "
                        f"clear; serve TLS with --certfile and --keyfile, or put a proxy that terminates TLS in front "
                        f"(--trusted-proxy ADDRESS)")
    return tls


class Guard:
    """The checks of one server: its CSRF key, its bind, its port."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self._key = secrets.token_bytes(32)
        self.session_cookie = f"progenitor_session_{port}"

    def csrf(self, session: str) -> str:
        return hmac.new(self._key, ("csrf:" + session).encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()

    def new_session(self) -> str:
        return secrets.token_urlsafe(24)

    def host_ok(self, host_header: str) -> bool:
        """On loopback, the browser must have asked for a loopback name (no DNS rebinding)."""
        if not is_loopback(self.host):
            return True
        name = host_header.rsplit(":", 1)[0] if not host_header.startswith("[") else host_header.split("]")[0] + "]"
        return is_loopback(name)

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
        if not session or not form_token or not same(form_token, self.csrf(session)):
            return "request refused: its CSRF token is missing or does not match this session; reload the page"
        return None


def same(given: str, expected: str) -> bool:
    """A constant-time comparison that any text may reach: ``compare_digest`` refuses a str
    with non-ASCII characters (a TypeError, so a 500), bytes it takes whatever they hold."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))
