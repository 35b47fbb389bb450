"""The page's POST routes: sign in and out, decide at a gate, revert a generation, manage accounts.

Every POST passes the guard (its CSRF token, its origin) and the person's role. A decision is
taken by whoever is signed in. Two things stop a decision for a second step on a page of its
own, with everything the person chose carried along: approving an escalation (what policy would
not promote) asks to confirm, and a decision to be signed (the person ticked "sign", or the task
requires it) shows the exact statement to sign with their SSH key and a field for the signature.
After an action the page redirects with a message code, never with text
(``messages``); an error is shown on the page itself.

(No ``from __future__ import annotations``: FastAPI reads the route annotations at runtime.)
"""

from typing import Any, Optional

from progenitor.oversight.accounts import may
from progenitor.ui import messages

__all__ = ["register"]


def _edits(form: Any) -> dict[str, dict]:
    """The values an "edit" changed: ``param__c0__lr`` fields that differ from their ``was__`` twin."""
    edits: dict[str, dict] = {}
    for key, value in form.items():
        if key.startswith("param__") and str(value).strip() != str(form.get("was__" + key[7:], "")).strip():
            cand, _, param = key[7:].partition("__")
            edits.setdefault(cand, {})[param] = value
    return edits


def _carried(form: Any) -> list[tuple[str, str]]:
    """The fields a confirmation page sends again (all but the ones it sets itself)."""
    return [(k, str(v)) for k, v in form.multi_items() if k not in ("csrf", "confirmed", "signature", "sign")]


def _refused(site: Any, request: Any, why: str, status: int = 403):
    return site.page(request, "error.html", status_code=status, problem=why)


def _second_step(site: Any, request: Any, form: Any, me: Any) -> Optional[Any]:
    """The confirmation (and signing) page a decision needs first, or None when it can be taken now."""
    from progenitor.errors import ProgenitorError
    from progenitor.oversight import decide as deciding
    from progenitor.oversight import hitl

    run_id, gate, action = form.get("run", ""), form.get("gate", ""), form.get("action", "")
    found = site.store.gate(run_id, gate)
    if found is None:
        return None  # decide says why
    rules = found.request.get("gate", {})
    wants_signature = rules.get("signatures") == "required" or form.get("sign") == "on"
    escalated = rules.get("escalated") and action == "approve"
    if not ((wants_signature and not form.get("signature")) or (escalated and form.get("confirmed") != "yes")):
        return None
    try:
        kind = hitl.kind_of(action)
        edits = {k: hitl.coerce_by_schema(found.request, v) for k, v in _edits(form).items()} if action == "edit" else {}
        statement = deciding.statement(found, kind, me.actor, form.get("comment", ""), edits or None)
    except ProgenitorError as exc:
        return None if not str(exc) else _inbox_error(site, request, str(exc))
    return site.page(request, "confirm.html", gate=found, action=kind, escalated=bool(escalated),
                     signing=wants_signature, required=rules.get("signatures") == "required",
                     statement=statement.decode(), carried=_carried(form),
                     why=[w for a in found.request["action_requests"] for w in a["args"].get("why", [])])


def _inbox_error(site: Any, request: Any, error: str, status: int = 409):
    from progenitor.ui import views

    return site.page(request, "inbox.html", status_code=status, error=error,
                     items=views.inbox_view(site.repo, site.store, request.state.identity))


def register(app: Any, site: Any) -> None:
    from fastapi import Request
    from fastapi.responses import RedirectResponse

    from progenitor import api
    from progenitor.errors import ProgenitorError

    def back(url: str):
        return RedirectResponse(url, status_code=303)

    @app.post("/login")
    async def login(request: Request):
        from progenitor.ui.pages import sign_in_page

        form, why = await site.form(request)
        if why:
            return _refused(site, request, why)
        sid = site.auth.sign_in(str(form.get("token") or "").strip())
        if sid is None:
            return sign_in_page(site, request, status_code=401, error="that token belongs to no account here")
        response = back(messages.url("/", "signed-in"))
        response.set_cookie(site.guard.session_cookie, sid, httponly=True, samesite="strict",
                            secure=request.state.scheme == "https")
        return response

    @app.post("/logout")
    async def logout(request: Request):
        form, why = await site.form(request)
        if why:
            return _refused(site, request, why)
        site.auth.sign_out(request.cookies.get(site.guard.session_cookie))
        response = back(messages.url("/login", "signed-out"))
        response.delete_cookie(site.guard.session_cookie)
        return response

    @app.post("/decide")
    async def decide(request: Request):
        form, why = await site.form(request)
        if why:
            return _refused(site, request, why)
        me = request.state.identity
        if not may(me.role, "decide"):
            return _refused(site, request, f"{me.name} is a {me.role}: only an approver or an admin decides")
        step = _second_step(site, request, form, me)
        if step is not None:
            return step
        run_id, gate, action = form.get("run", ""), form.get("gate", ""), form.get("action", "")
        edits = _edits(form) if action == "edit" else {}
        try:
            recorded = api.decide(run_id, action, by=me, comment=form.get("comment", ""), edits=edits or None,
                                  repo=site.repo, gate=gate or None, seen=form.get("seen") or None, surface="web",
                                  signature=form.get("signature") or None, store=site.store.url)
        except ProgenitorError as exc:
            return _inbox_error(site, request, str(exc))
        return back(messages.url("/inbox", "decided" if recorded.final else "approval", run=run_id, gate=recorded.gate))

    @app.post("/revert")
    async def revert(request: Request):
        form, why = await site.form(request)
        if why:
            return _refused(site, request, why)
        me, run_id = request.state.identity, form.get("run", "")
        if not may(me.role, "revert"):
            return _refused(site, request, f"{me.name} is a {me.role}: only an admin reverts a generation")
        try:
            done = api.revert(run_id, int(form.get("gen", "0")), form.get("comment", ""), by=me, repo=site.repo,
                              surface="web")
        except (ProgenitorError, ValueError) as exc:
            from progenitor.ui import views

            return site.page(request, "run.html", status_code=409, error=str(exc), run_id=run_id,
                             **views.run_view(site.repo, site.store, run_id))
        return back(messages.url(f"/runs/{run_id}", "reverted", run=run_id, gen=done.gen))

    @app.post("/users")
    async def users(request: Request):
        from progenitor.oversight import accounts

        form, why = await site.form(request)
        if why:
            return _refused(site, request, why)
        me = request.state.identity
        if not may(me.role, "manage"):
            return _refused(site, request, f"{me.name} is a {me.role}: only an admin manages accounts")
        what, name = form.get("what", ""), str(form.get("name", "")).strip().lower()
        issued, error = None, None
        try:
            if what == "add":
                issued = (name, form.get("role", ""), accounts.add(site.store, name, form.get("role", ""), me.actor))
            elif what == "renew":
                issued = (name, accounts.find(site.store, name).role, accounts.renew(site.store, name))
            elif what == "remove":
                accounts.remove(site.store, name)
                return back(messages.url("/users", "removed", name=name))
        except ProgenitorError as exc:
            error = str(exc)
        # A new token is shown on this page, once: never in an address.
        return site.page(request, "users.html", status_code=409 if error else 200, error=error, issued=issued,
                         accounts=accounts.users(site.store))
