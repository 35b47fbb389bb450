"""The approval page: a FastAPI app with server-rendered Jinja2 templates.

Pages (``pages``): runs (``/``), a run (``/runs/R``: lineage folded by generation, objective
chart, reverts), a candidate (``/runs/R/g1/c0``), a comparison (``/runs/R/compare?c=g1/c0&c=...``),
the inbox (``/inbox``: every pending decision with its card), the audit log (``/audit``), the
accounts (``/users``, admins). Actions (``actions``): sign in and out, decide, revert, manage
accounts. ``/api/fingerprint`` is what the page polls to reload itself while a run moves.

Every page but the sign-in form needs a person (``auth``); what they may do is their role's.
Every asset is ours (``static/``) or comes from an installed package (plotly's own
``plotly.min.js``, pygments' CSS made at start): the page needs no network. Decisions go
through ``progenitor.api.decide``, like the CLI's.

(No ``from __future__ import annotations`` here: FastAPI reads the route annotations at runtime.)
"""

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlencode

from progenitor.oversight.store import DecisionStore
from progenitor.ui.auth import Auth
from progenitor.ui.security import Guard

__all__ = ["create_app"]

HERE = Path(__file__).parent
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
"""Plotly sets inline styles on the SVG it draws; no inline script and nothing off this server."""
OPEN_PATHS = ("/static/", "/assets/", "/favicon.ico", "/login")
"""What anyone may fetch: our own script, styles and icon, and the sign-in form."""


@dataclass
class Site:
    """What every route shares: the model repo, its store, the guards, the templates."""

    repo: Path
    store: DecisionStore
    guard: Guard
    auth: Auth
    templates: Any

    def page(self, request: Any, name: str, status_code: int = 200, **data: Any):
        from progenitor.ui import messages, views

        me = getattr(request.state, "identity", None)
        data.setdefault("error", None)
        data.update(csrf=self.guard.csrf(request.state.session), me=me, repo=str(self.repo), repo_name=self.repo.name,
                    fingerprint=views.fingerprint(self.repo, self.store) if me else "",
                    pending_count=len(self.store.pending()) if me else 0,
                    message=messages.message(self.store, request.query_params))
        return self.templates.TemplateResponse(request, name, data, status_code=status_code)

    async def form(self, request: Any) -> tuple[Any, Optional[str]]:
        """The POST's form, and why it is refused (None: it is not)."""
        form = await request.form()
        why = self.guard.refuse_post(
            session=request.cookies.get(self.guard.session_cookie), form_token=form.get("csrf"),
            origin=request.headers.get("origin"), referer=request.headers.get("referer"),
            host_header=request.headers.get("host", ""), scheme=request.state.scheme)
        return form, why


def create_app(repo: Path, *, host: str = "127.0.0.1", port: int = 8765, store: Optional[str] = None,
               owner: Optional[str] = None, proxies: Optional[list[str]] = None,
               user_header: str = "X-Forwarded-User"):
    """The page of ``repo`` (and of the team ``store``). ``owner``: the OS user whose sign-in link
    ``serve`` prints (``app.state.site.auth.owner_token``); ``proxies``: trusted proxy addresses."""
    from fastapi import FastAPI
    from fastapi.staticfiles import StaticFiles
    from fastapi.templating import Jinja2Templates

    from progenitor.ui import actions, pages, text

    repo = Path(repo).resolve()
    decisions = DecisionStore(repo, store)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["reveal"] = text.reveal
    templates.env.filters["b64"] = lambda value: base64.b64encode(str(value).encode()).decode()
    site = Site(repo=repo, store=decisions, guard=Guard(host, port),
                auth=Auth(decisions, owner, proxies, user_header), templates=templates)
    app = FastAPI(title="progenitor", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.site = site
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    _protect(app, site)
    pages.register(app, site)
    actions.register(app, site)
    _assets(app, site)
    return app


def _scheme(request: Any, site: Site, peer: Optional[str]) -> str:
    """https when TLS is served here, or a trusted proxy says it served it."""
    if request.url.scheme == "https":
        return "https"
    if site.auth.from_proxy(peer) and request.headers.get("x-forwarded-proto", "").lower() == "https":
        return "https"
    return "http"


def _without_token(request: Any) -> str:
    rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
    return request.url.path + (f"?{urlencode(rest)}" if rest else "")


def _secure_headers(response: Any) -> Any:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _protect(app: Any, site: Site) -> None:
    from fastapi import Request
    from fastapi.responses import PlainTextResponse, RedirectResponse

    guard, auth = site.guard, site.auth

    @app.middleware("http")
    async def protect(request: Request, call_next):
        peer = request.client.host if request.client else None
        if not auth.from_proxy(peer) and not guard.host_ok(request.headers.get("host", "")):
            return PlainTextResponse("refused: this page answers to a loopback name only", status_code=400)
        request.state.scheme = scheme = _scheme(request, site, peer)
        cookie = dict(httponly=True, samesite="strict", secure=scheme == "https")
        token = request.query_params.get("token")
        if token is not None:  # a sign-in link: exchanged for a session, then out of the address bar
            sid = auth.sign_in(token)
            if sid is None:
                return _secure_headers(PlainTextResponse(
                    "that link's token belongs to no one here: ask for a new link or account", status_code=401))
            response = RedirectResponse(_without_token(request), status_code=303)
            response.set_cookie(guard.session_cookie, sid, **cookie)
            return _secure_headers(response)
        sid = request.cookies.get(guard.session_cookie)
        request.state.session = sid or guard.new_session()
        request.state.identity = auth.identify(peer, request.headers, sid)
        if request.state.identity is None and not request.url.path.startswith(OPEN_PATHS):
            from progenitor.ui import pages

            response = pages.sign_in_page(site, request, status_code=401)
        else:
            response = await call_next(request)
        if sid is None:
            response.set_cookie(guard.session_cookie, request.state.session, **cookie)
        return _secure_headers(response)


def _plotly_js() -> Path:
    from importlib.resources import files

    return Path(str(files("plotly") / "package_data" / "plotly.min.js"))


def _assets(app: Any, site: Site) -> None:
    from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
    from pygments.formatters import HtmlFormatter

    from progenitor.ui import views

    pygments_css = HtmlFormatter(cssclass="highlight").get_style_defs(".highlight")

    @app.get("/favicon.ico")
    def favicon():
        return RedirectResponse("/static/favicon.svg", status_code=301)

    @app.get("/api/fingerprint")
    def fingerprint():
        return JSONResponse({"fingerprint": views.fingerprint(site.repo, site.store)})

    @app.get("/assets/plotly.min.js")
    def plotly_js():
        return FileResponse(_plotly_js(), media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    @app.get("/assets/pygments.css")
    def pygments():
        return Response(pygments_css, media_type="text/css", headers={"Cache-Control": "max-age=86400"})
