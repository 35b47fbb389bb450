"""Notifications: when a gate opens, ``oversight.notify`` tells a webhook (a real HTTP receiver on
loopback here) and/or a command, with the gate's HITL request and the page's link; once per gate
(a resume does not tell anyone twice), retried, and recorded in the audit log."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import progenitor
from progenitor.options import RunOptions
from progenitor.oversight.audit import audit_log
from progenitor.oversight.notify import notify
from progenitor.task.spec import Notify
from progenitor.testing import make_repo, scripted, toy_task_files
from tests.helpers.gating import OPTIONS


class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST and answers with ``statuses`` in turn (then 200)."""

    def __init__(self, statuses: tuple[int, ...] = ()):
        self.calls: list[dict] = []
        self.statuses = list(statuses)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls.append({"body": json.loads(body), "raw": body, "headers": dict(self.headers)})
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _repo(tmp_path: Path, notify_fields: str, generations: int = 1) -> Path:
    files = toy_task_files(generations=generations, candidates=1, oversight=(
        f"mode: approver, poll_seconds: 0.05, notify: {{{notify_fields}, backoff: 0.01, "
        f"page_url: 'https://progenitor.example.org/'}}"))
    return make_repo(tmp_path / "repo", files)


STEPS = scripted([[{"hypothesis": "closer", "params": {"w": 2.5}}], [{"hypothesis": "closer still", "params": {"w": 2.9}}]])


@pytest.mark.loop
def test_a_webhook_on_loopback_gets_one_call_per_gate_opened(tmp_path, receiver):
    repo = _repo(tmp_path, f"webhook: '{receiver.url}'", generations=2)
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS), detach=True, architect=STEPS)
    assert len(receiver.calls) == 1
    progenitor.resume_run(summary.run_id, repo=repo, detach=True, architect=STEPS)  # still waiting: no second call
    assert len(receiver.calls) == 1
    progenitor.decide(summary.run_id, "approve", by="pat", repo=repo)
    progenitor.resume_run(summary.run_id, repo=repo, detach=True, architect=STEPS)
    assert len(receiver.calls) == 2
    progenitor.decide(summary.run_id, "approve", by="pat", repo=repo)
    assert progenitor.resume_run(summary.run_id, repo=repo, architect=STEPS).status == "finished"
    assert len(receiver.calls) == 2, "two gates, two calls"
    first, second = (c["body"] for c in receiver.calls)
    assert first["gate"] == "g1/promotion" and second["gate"] == "g2/promotion" and first["run"] == summary.run_id
    assert first["request"]["action_requests"][0]["args"]["candidate"] == "g1/c0"
    assert first["link"] == f"https://progenitor.example.org/inbox#gate-{summary.run_id}-g1-promotion"
    told = [e for e in audit_log(repo).entries() if e["action"] == "notify"]
    assert [e["gate"] for e in told] == ["g1/promotion", "g2/promotion"] and all(e["actor"] == "platform" for e in told)
    assert "webhook http://127.0.0.1: told after 1 attempt(s) (HTTP 200)" in told[0]["comment"]


@pytest.mark.loop
def test_a_webhook_is_retried_and_a_failure_is_recorded_not_fatal(tmp_path):
    flaky = Receiver(statuses=(500, 503))
    try:
        repo = _repo(tmp_path / "a", f"webhook: '{flaky.url}'")
        summary = progenitor.start_run(repo, RunOptions(**OPTIONS), detach=True, architect=STEPS)
        assert len(flaky.calls) == 3
        [told] = [e for e in audit_log(repo).entries() if e["action"] == "notify"]
        assert "told after 3 attempt(s) (HTTP 200)" in told["comment"]
    finally:
        flaky.close()
    down = Receiver()
    down.close()  # nobody listens there any more
    repo = _repo(tmp_path / "b", f"webhook: '{down.url}', retries: 2")
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS), detach=True, architect=STEPS)
    assert summary.status == "waiting", "the run waits at its gate all the same"
    [told] = [e for e in audit_log(repo).entries() if e["action"] == "notify"]
    assert "FAILED after 2 attempt(s)" in told["comment"] and told["notices"][0]["ok"] is False


@pytest.mark.loop
def test_a_command_gets_the_json_on_stdin_and_the_gate_in_its_environment(tmp_path):
    out = tmp_path / "told.json"
    env_out = tmp_path / "env.txt"
    repo = _repo(tmp_path, f"command: 'cat > {out} && echo \"$PROGENITOR_GATE $PROGENITOR_LINK\" > {env_out}'")
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS), detach=True, architect=STEPS)
    body = json.loads(out.read_text())
    assert body["event"] == "gate.opened" and body["request"]["gate"]["id"] == "g1/promotion"
    assert env_out.read_text().split() == ["g1/promotion", body["link"]] and summary.run_id in body["link"]


def test_a_secret_signs_each_post_and_a_webhook_url_may_come_from_the_environment(monkeypatch, receiver):
    monkeypatch.setenv("HOOK_URL", receiver.url)
    monkeypatch.setenv("HOOK_KEY", "k3y")
    config = Notify(webhook_env="HOOK_URL", secret_env="HOOK_KEY")
    request = {"gate": {"id": "g1/promotion", "run": "r1", "kind": "promotion"}, "action_requests": []}
    [notice] = notify(config, request)
    assert notice.ok and notice.target == "http://127.0.0.1" and "k3y" not in notice.model_dump_json()
    [call] = receiver.calls
    expected = "sha256=" + hmac.new(b"k3y", call["raw"], hashlib.sha256).hexdigest()
    assert call["headers"]["X-Progenitor-Signature"] == expected
    monkeypatch.delenv("HOOK_URL")
    [unset] = notify(config, request)
    assert not unset.ok and "HOOK_URL" in unset.detail and unset.attempts == 0


def test_notify_fields_are_checked():
    for fields, says in (({}, "needs a command, a webhook"), ({"webhook": "ftp://x"}, "http:// or https://"),
                         ({"webhook_env": "not a name"}, "name of an environment variable")):
        with pytest.raises(ValueError, match=says):
            Notify(**fields)
