"""The approval page: a FastAPI app with server-rendered Jinja2 templates.

Pages: runs (``/``), a run (``/runs/R``: lineage tree, objective chart, reverts), a candidate
(``/runs/R/g1/c0``: diff, metrics against the champion, findings, hypothesis, cost, log tail),
the inbox (``/inbox``: every pending decision with approve / reject / edit / request changes),
the audit log (``/audit``, with the chain's verification). ``/api/fingerprint`` is what the
page polls to reload itself while a run moves. Every asset is ours (``static/``) or comes from
an installed package (plotly's own ``plotly.min.js``, pygments' CSS made at start): the page
needs no network. Decisions go through ``progenitor.api.decide``, like the CLI's.

(No ``from __future__ import annotations`` here: FastAPI reads the route annotations at runtime.)
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlencode

from progenitor.candidate.keys import candidate_name
from progenitor.ui.security import Guard

__all__ = ["create_app"]

HERE = Path(__file__).parent
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
"""Plotly sets inline styles on the SVG it draws; no inline script and nothing off this server."""


def _plotly_js() -> Path:
    from importlib.resources import files

    return Path(str(files("plotly") / "package_data" / "plotly.min.js"))


@dataclass
class Site:
    """What every route shares: the model repo, the guard, the templates."""

    repo: Path
    guard: Guard
    templates: Any

    def page(self, request: Any, name: str, status_code: int = 200, **data: Any):
        from progenitor.ui import views

        data.update(csrf=self.guard.csrf(request.state.session), fingerprint=views.fingerprint(self.repo),
                    repo=str(self.repo), repo_name=self.repo.name, pending_count=len(views.DecisionStore(self.repo).pending()),
                    message=request.query_params.get("done"), error=request.query_params.get("error"))
        return self.templates.TemplateResponse(request, name, data, status_code=status_code)

    async def form(self, request: Any) -> tuple[Any, Optional[str]]:
        """The POST's form, and why it is refused (None: it is not)."""
        form = await request.form()
        why = self.guard.refuse_post(
            session=request.cookies.get(self.guard.session_cookie), form_token=form.get("csrf"),
            origin=request.headers.get("origin"), referer=request.headers.get("referer"),
            host_header=request.headers.get("host", ""), scheme=request.url.scheme)
        return form, why


def back(path: str, **query: str):
    from fastapi.responses import RedirectResponse

    return RedirectResponse(f"{path}?{urlencode(query)}" if query else path, status_code=303)


def create_app(repo: Path, *, host: str = "127.0.0.1", port: int = 8765, token: Optional[str] = None):
    from fastapi import FastAPI
    from fastapi.staticfiles import StaticFiles
    from fastapi.templating import Jinja2Templates

    site = Site(repo=Path(repo).resolve(), guard=Guard(host, port, token),
                templates=Jinja2Templates(directory=str(HERE / "templates")))
    app = FastAPI(title="progenitor", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    _protect(app, site.guard)
    _pages(app, site)
    _actions(app, site)
    _assets(app, site)
    return app


def _protect(app: Any, guard: Guard) -> None:
    from fastapi import Request
    from fastapi.responses import PlainTextResponse

    @app.middleware("http")
    async def protect(request: Request, call_next):
        if not guard.host_ok(request.headers.get("host", "")):
            return PlainTextResponse("refused: this page answers to a loopback name only", status_code=400)
        query_token = request.query_params.get("token")
        if not guard.authorized(request.cookies.get(guard.auth_cookie), query_token):
            return PlainTextResponse("this page needs its token: open the URL 'progenitor ui' printed", status_code=401)
        session = request.cookies.get(guard.session_cookie)
        request.state.session = session or guard.new_session()
        response = await call_next(request)
        if session is None:
            response.set_cookie(guard.session_cookie, request.state.session, httponly=True, samesite="strict")
        if guard.token and query_token:
            response.set_cookie(guard.auth_cookie, guard.auth_value(), httponly=True, samesite="strict")
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        return response


def _pages(app: Any, site: Site) -> None:
    from fastapi import Request

    from progenitor.errors import UserError
    from progenitor.ui import views

    @app.get("/")
    def runs(request: Request):
        return site.page(request, "runs.html", runs=views.runs_view(site.repo))

    @app.get("/runs/{run_id}")
    def run(request: Request, run_id: str):
        try:
            data = views.run_view(site.repo, run_id)
        except UserError as exc:
            return site.page(request, "error.html", status_code=404, problem=str(exc))
        return site.page(request, "run.html", run_id=run_id, **data)

    @app.get("/runs/{run_id}/g{gen}/c{k}")
    def candidate(request: Request, run_id: str, gen: int, k: int):
        data = views.candidate_view(site.repo, run_id, gen, k)
        if data is None:
            return site.page(request, "error.html", status_code=404, problem=f"run {run_id} has no candidate {candidate_name(gen, k)}")
        return site.page(request, "candidate.html", run_id=run_id, **data)

    @app.get("/inbox")
    def inbox(request: Request):
        return site.page(request, "inbox.html", items=views.inbox_view(site.repo))

    @app.get("/audit")
    def audit(request: Request):
        return site.page(request, "audit.html", **views.audit_view(site.repo))


def _edits(form: Any) -> dict[str, dict]:
    """The values an "edit" changed: ``param__c0__lr`` fields that differ from their ``was__`` twin."""
    edits: dict[str, dict] = {}
    for key, value in form.items():
        if key.startswith("param__") and str(value).strip() != str(form.get("was__" + key[7:], "")).strip():
            cand, _, param = key[7:].partition("__")
            edits.setdefault(cand, {})[param] = value
    return edits


def _actions(app: Any, site: Site) -> None:
    from fastapi import Request
    from fastapi.responses import PlainTextResponse

    from progenitor import api
    from progenitor.errors import ProgenitorError

    @app.post("/decide")
    async def post_decision(request: Request):
        form, why = await site.form(request)
        if why:
            return PlainTextResponse(why, status_code=403)
        name, action, run_id = (form.get("name") or "").strip(), form.get("action", ""), form.get("run", "")
        if not name:
            return back("/inbox", error="a decision needs your name: fill in 'your name' and decide again")
        edits = _edits(form) if action == "edit" else {}
        try:
            recorded = api.decide(run_id, action, by=name, comment=form.get("comment", ""), edits=edits or None,
                                  repo=site.repo, gate=form.get("gate"), seen=form.get("seen"), surface="web")
        except ProgenitorError as exc:
            return back("/inbox", error=str(exc))
        return back("/inbox", done=f"{recorded.gate} of run {run_id}: {recorded.type} by {recorded.by} recorded")

    @app.post("/revert")
    async def revert(request: Request):
        form, why = await site.form(request)
        if why:
            return PlainTextResponse(why, status_code=403)
        run_id, name = form.get("run", ""), (form.get("name") or "").strip()
        if not name:
            return back(f"/runs/{run_id}", error="a revert needs your name")
        try:
            done = api.revert(run_id, int(form.get("gen", "0")), form.get("comment", ""), by=name, repo=site.repo,
                              surface="web")
        except (ProgenitorError, ValueError) as exc:
            return back(f"/runs/{run_id}", error=str(exc))
        return back(f"/runs/{run_id}", done=f"generation {done.gen} reverted by {done.by}; champion back at "
                                            f"{done.restored['sha'][:10]}")


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
        return JSONResponse({"fingerprint": views.fingerprint(site.repo)}, headers={"Cache-Control": "no-store"})

    @app.get("/assets/plotly.min.js")
    def plotly_js():
        return FileResponse(_plotly_js(), media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    @app.get("/assets/pygments.css")
    def pygments():
        return Response(pygments_css, media_type="text/css")
