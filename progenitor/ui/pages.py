"""The page's GET routes: runs, a run, a candidate, a comparison, the inbox, the audit log, the
accounts and the sign-in form. Each reads its data from ``views`` and lays it out with a template;
an unknown run or candidate is a 404 page, never a 500.

(No ``from __future__ import annotations``: FastAPI reads the route annotations at runtime.)
"""

from typing import Any

from progenitor.oversight.accounts import may

__all__ = ["register", "sign_in_page"]


def sign_in_page(site: Any, request: Any, status_code: int = 200, error: str = ""):
    who = site.auth.unknown_proxy_user(request.client.host if request.client else None, request.headers)
    if who:
        error = f"the proxy says you are {who}, but there is no account {who} here: ask an admin"
    return site.page(request, "login.html", status_code=status_code, error=error or None)


def not_found(site: Any, request: Any, problem: str):
    return site.page(request, "error.html", status_code=404, problem=problem)


def register(app: Any, site: Any) -> None:
    from fastapi import Query, Request

    from progenitor.errors import UserError
    from progenitor.ui import views

    @app.get("/")
    def runs(request: Request):
        return site.page(request, "runs.html", runs=views.runs_view(site.repo, site.store))

    @app.get("/login")
    def login(request: Request):
        return sign_in_page(site, request)

    @app.get("/runs/{run_id}")
    def run(request: Request, run_id: str):
        try:
            data = views.run_view(site.repo, site.store, run_id)
        except UserError as exc:
            return not_found(site, request, str(exc))
        return site.page(request, "run.html", run_id=run_id, **data)

    @app.get("/runs/{run_id}/compare")
    def compare(request: Request, run_id: str, c: list[str] = Query(default=[])):
        try:
            data = views.compare_view(site.repo, run_id, c)
        except UserError as exc:
            return not_found(site, request, str(exc))
        return site.page(request, "compare.html", run_id=run_id, **data)

    @app.get("/runs/{run_id}/g{gen}/c{k}")
    def candidate(request: Request, run_id: str, gen: int, k: int):
        try:
            data = views.candidate_view(site.repo, site.store, run_id, gen, k)
        except UserError as exc:
            return not_found(site, request, str(exc))
        return site.page(request, "candidate.html", run_id=run_id, **data)

    @app.get("/inbox")
    def inbox(request: Request):
        return site.page(request, "inbox.html", items=views.inbox_view(site.repo, site.store, request.state.identity))

    @app.get("/audit")
    def audit(request: Request):
        return site.page(request, "audit.html", **views.audit_view(site.repo, site.store))

    @app.get("/users")
    def users(request: Request):
        if not may(request.state.identity.role, "manage"):
            return site.page(request, "error.html", status_code=403, problem="only an admin manages accounts")
        from progenitor.oversight import accounts

        return site.page(request, "users.html", accounts=accounts.users(site.store), issued=None)
