"""The approval web page (``progenitor ui``): runs, lineage, candidates, the inbox of decisions
and the audit log, served by FastAPI from templates and static files of our own.

``create_app`` builds the app (tests and embedding), ``serve`` runs it with uvicorn after the
bind is checked (loopback, or a token)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Optional

__all__ = ["create_app", "serve"]


def create_app(repo: Path, **options):
    from progenitor.ui.app import create_app as make

    return make(repo, **options)


def serve(repo: Path, host: str = "127.0.0.1", port: int = 8765, token: Optional[str] = None,
          echo: Callable[[str], None] = print) -> None:
    """Serve the page of the model repo ``repo`` until Ctrl-C."""
    import uvicorn

    from progenitor.ui.security import check_bind

    token = check_bind(host, token)
    app = create_app(Path(repo), host=host, port=port, token=token)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    echo(f"progenitor ui: serving the runs of {Path(repo).resolve()} at {url} (Ctrl-C stops)")
    sys.stdout.flush()
    uvicorn.run(app, host=host, port=port, log_level="warning")
