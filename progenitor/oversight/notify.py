"""Telling people that a gate opened (``oversight.notify``): a command, a webhook, or both.

Each gets the same JSON: the run, the gate, its description, the link to it on the approval
page, and the gate's whole HITL request (what the person will be asked). Each is tried up to
``retries`` times, ``backoff`` seconds apart and doubling; a webhook counts as told when it
answers 2xx, a command when it exits 0. The node that opens the gate records every outcome in
the audit log, once per gate (a resumed run does not tell anyone twice).

A webhook's URL may be a secret (chat webhooks are): ``webhook_env`` names a variable that
holds it, and the audit log keeps only its scheme and host. With ``secret_env`` each POST
carries ``X-Progenitor-Signature: sha256=<HMAC-SHA256 of the body>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from typing import Callable, Optional
from urllib.parse import quote, urlsplit

from pydantic import BaseModel

from progenitor.task.spec import Notify

__all__ = ["DEFAULT_PAGE", "Notice", "body", "link", "notify"]

DEFAULT_PAGE = "http://127.0.0.1:8765/"
"""Where ``progenitor ui`` serves by default: the link when the task names no ``page_url``."""


class Notice(BaseModel):
    """How telling one channel went."""

    channel: str
    """command or webhook."""
    ok: bool
    attempts: int
    detail: str
    """What answered last (``HTTP 200``, ``exit 0``), or why it failed."""
    target: str = ""
    """What was told, without secrets: the webhook's scheme and host, the command's first word."""


def link(config: Notify, run: str, gate: str) -> str:
    """The gate on the approval page."""
    base = (config.page_url or DEFAULT_PAGE).rstrip("/") + "/"
    return f"{base}inbox#gate-{quote(run)}-{quote(gate.replace('/', '-'))}"


def body(request: dict, page_link: str) -> dict:
    gate = request.get("gate", {})
    return {"event": "gate.opened", "run": gate.get("run"), "gate": gate.get("id"), "kind": gate.get("kind"),
            "description": gate.get("description"), "link": page_link, "request": request}


def _webhook_url(config: Notify) -> Optional[str]:
    if config.webhook:
        return config.webhook
    if config.webhook_env:
        return os.environ.get(config.webhook_env) or None
    return None


def _post(url: str, data: bytes, config: Notify) -> str:
    headers = {"Content-Type": "application/json", "User-Agent": "progenitor-notify/1"}
    if config.secret_env and os.environ.get(config.secret_env):
        key = os.environ[config.secret_env].encode()
        headers["X-Progenitor-Signature"] = "sha256=" + hmac.new(key, data, hashlib.sha256).hexdigest()
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=config.timeout) as answer:  # noqa: S310 - the task's own URL
        return f"HTTP {answer.status}"


def _run(command: str, data: bytes, config: Notify, env: dict[str, str]) -> str:
    done = subprocess.run(["sh", "-c", command], input=data, capture_output=True, timeout=config.timeout,
                          env={**os.environ, **env})
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()
        raise RuntimeError(f"exit {done.returncode}" + (f": {tail[-1][:200]}" if tail else ""))
    return "exit 0"


def _attempt(channel: str, target: str, send: Callable[[], str], config: Notify,
             sleep: Callable[[float], None]) -> Notice:
    detail, wait = "", config.backoff
    for attempt in range(1, config.retries + 1):
        try:
            return Notice(channel=channel, ok=True, attempts=attempt, detail=send(), target=target)
        except urllib.error.HTTPError as exc:
            detail = f"HTTP {exc.code}"
        except (OSError, RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
            detail = str(getattr(exc, "reason", None) or exc)[:300] or type(exc).__name__
        if attempt < config.retries:
            sleep(wait)
            wait *= 2
    return Notice(channel=channel, ok=False, attempts=config.retries, detail=detail, target=target)


def notify(config: Notify, request: dict, sleep: Callable[[float], None] = time.sleep) -> list[Notice]:
    """Tell every channel of ``config`` that the gate of ``request`` opened; one ``Notice`` each."""
    gate = request.get("gate", {})
    page_link = link(config, str(gate.get("run")), str(gate.get("id")))
    data = json.dumps(body(request, page_link), sort_keys=True, default=str).encode()
    notices = []
    if config.command:
        env = {"PROGENITOR_RUN": str(gate.get("run")), "PROGENITOR_GATE": str(gate.get("id")),
               "PROGENITOR_LINK": page_link}
        notices.append(_attempt("command", config.command.split()[0], lambda: _run(config.command, data, config, env),
                                config, sleep))
    if config.webhook or config.webhook_env:
        url = _webhook_url(config)
        if url is None:
            notices.append(Notice(channel="webhook", ok=False, attempts=0, target=f"${config.webhook_env}",
                                  detail=f"the variable {config.webhook_env} that should hold the webhook's URL is unset"))
        else:
            parts = urlsplit(url)
            notices.append(_attempt("webhook", f"{parts.scheme}://{parts.hostname}", lambda: _post(url, data, config),
                                    config, sleep))
    return notices
