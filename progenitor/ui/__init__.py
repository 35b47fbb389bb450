"""The approval web page (``progenitor ui``): runs, lineage, candidates, the inbox of decisions,
comparisons and the audit log, served by FastAPI from templates and static files of our own.

``create_app`` builds the app (tests and embedding), ``serve`` runs it with uvicorn after the
bind is checked (loopback; or TLS, or a trusted proxy in front) and prints the owner's link."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Optional

__all__ = ["create_app", "serve"]


def create_app(repo: Path, **options):
    from progenitor.ui.app import create_app as make

    return make(repo, **options)


def serve(repo: Path, host: str = "127.0.0.1", port: int = 8765, store: Optional[str] = None,
          certfile: Optional[Path] = None, keyfile: Optional[Path] = None, proxies: Optional[list[str]] = None,
          user_header: str = "X-Forwarded-User", echo: Callable[[str], None] = print) -> None:
    """Serve the page of the model repo ``repo`` (and of a team ``store``) until Ctrl-C."""
    import uvicorn

    from progenitor.oversight.decide import default_person
    from progenitor.ui.security import check_bind

    tls = check_bind(host, certfile, keyfile, proxies or [])
    app = create_app(Path(repo), host=host, port=port, store=store, owner=default_person(), proxies=proxies or [],
                     user_header=user_header)
    site = app.state.site
    shown = f"[{host}]" if ":" in host else host
    url = f"{'https' if tls else 'http'}://{shown}:{port}/"
    where = f"{Path(repo).resolve()}" + (f" and the store {site.store.where}" if site.store.shared else "")
    echo(f"progenitor ui: serving the runs of {where} at {url} (Ctrl-C stops)")
    echo(f"signed in as {site.auth.owner_name} (admin) by opening: {url}?token={site.auth.owner_token}")
    echo("others sign in with their own account: progenitor users add NAME --role approver")
    sys.stdout.flush()
    # proxy_headers off: the page itself decides which peer's X-Forwarded-* to believe (--trusted-proxy).
    uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=False,
                ssl_certfile=str(certfile) if certfile else None, ssl_keyfile=str(keyfile) if keyfile else None)
