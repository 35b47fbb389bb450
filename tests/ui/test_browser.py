"""The approval page in a real browser: Playwright driving Debian's Chromium (``make test``
installs it), headless, against ``progenitor ui`` and ``progenitor run`` started as real
processes on the toy task. Every request the page makes to anything but this machine is cut
and recorded; each test keeps a screenshot of every page it visits in its temp dir."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import progenitor
from progenitor.lineage import Lineage, champion_ref
from tests.helpers.gating import cli, toy_repo, wait_for

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]
LOCAL = {"127.0.0.1", "localhost", "[::1]"}


@pytest.fixture(scope="module")
def browser(request):
    if not Path(CHROMIUM).exists():
        if os.environ.get("PROGENITOR_REQUIRE_DOCKER") == "1" or "browser" in (request.config.option.markexpr or ""):
            pytest.fail(f"{CHROMIUM} is missing; .ci/system-setup.sh installs it (apt-get install chromium)")
        pytest.skip("no Chromium here; `make test` installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield chromium
        chromium.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False


def _spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "progenitor.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


@pytest.fixture
def serve():
    """``serve(repo, *extra)``: ``progenitor ui`` on a free loopback port; its base URL."""
    procs = []

    def start(repo: Path, *extra: str) -> str:
        port = _free_port()
        proc = _spawn("ui", "--repo", str(repo), "--port", str(port), *extra)
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        # Ours, not whatever took the port meanwhile: a ui that could not bind has exited.
        wait_for(lambda: proc.poll() is not None or _answers(base + "/static/app.css"), timeout=60,
                 what="the page to answer")
        assert proc.poll() is None, f"progenitor ui exited {proc.returncode}: {proc.stderr.read()}"
        return base

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def run_process():
    procs = []

    def start(repo: Path) -> subprocess.Popen:
        proc = _spawn("run", str(repo), "--sandbox", "process", "--executor", "local")
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)


class Visitor:
    """A page whose every off-machine request is refused and recorded; a screenshot per visit."""

    def __init__(self, browser, shots: Path):
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.shots = shots
        self.shots.mkdir(exist_ok=True)
        self.external: list[str] = []
        self.count = 0
        self.context.route("**/*", self._route)

    def _route(self, route):
        host = urlsplit(route.request.url).hostname or ""
        if host in LOCAL or host == "::1":
            route.continue_()
        else:
            self.external.append(route.request.url)
            route.abort()

    def visit(self, url: str, name: str):
        from playwright.sync_api import Error

        for attempt in range(3):
            try:
                self.page.goto(url)
                break
            except Error as exc:
                # The page we leave may be reloading itself (a run moved) just as we navigate away.
                if "ERR_ABORTED" not in str(exc) or attempt == 2:
                    raise
        self.shot(name)
        return self.page

    def shot(self, name: str) -> Path:
        self.count += 1
        path = self.shots / f"{self.count:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self):
        self.context.close()


@pytest.fixture
def visitor(browser, tmp_path):
    v = Visitor(browser, tmp_path / "screens")
    yield v
    v.close()
    assert not v.external, f"the page asked for off-machine resources: {v.external}"


def _run_id(repo: Path) -> str:
    runs = repo / ".progenitor" / "runs"
    wait_for(lambda: runs.is_dir() and any(runs.iterdir()), what="the run to start")
    return next(runs.iterdir()).name


def test_approve_in_the_inbox_after_reading_the_diff_moves_the_run_on_and_the_champion(tmp_path, serve, run_process,
                                                                                        visitor):
    repo = toy_repo(tmp_path / "repo", "approver")
    base = serve(repo)
    proc = run_process(repo)
    run_id = _run_id(repo)
    page = visitor.visit(f"{base}/inbox", "inbox-empty")
    # The page polls and reloads itself when the gate opens.
    page.wait_for_selector("section.gate", timeout=120_000)
    visitor.shot("inbox")
    diff = page.locator("section.gate .diff").first.inner_text()
    assert "-w: 1.0" in diff and "+w: " in diff
    candidate = page.locator("section.gate article.action h3 a").first.inner_text()
    page.click(f"text={candidate}")
    page.wait_for_selector(".diff")
    visitor.shot("candidate")
    assert "+w: " in page.locator(".diff").inner_text() and page.locator("table.metrics").count() == 1
    page = visitor.visit(f"{base}/inbox", "inbox-again")
    page.fill("section.gate input[name=name]", "Pat Browser")
    page.click("section.gate button[value=approve]")
    page.wait_for_selector(".flash.ok")
    visitor.shot("approved")
    assert "approve by human:Pat Browser recorded" in page.locator(".flash.ok").inner_text()
    assert proc.wait(120) == 0, proc.stderr.read()
    champion = Lineage(repo).resolve(champion_ref(run_id))
    assert champion != Lineage(repo).head()
    page = visitor.visit(f"{base}/runs/{run_id}", "run")
    page.wait_for_selector("#chart .main-svg")
    visitor.shot("run-chart")
    assert page.locator("#run-status").inner_text() == "finished"
    assert page.locator("#champion").inner_text() == champion[:12]
    audit = visitor.visit(f"{base}/audit", "audit")
    assert "Chain intact" in audit.locator("#verify").inner_text()
    assert "human:Pat Browser" in audit.content()


def test_request_changes_with_a_comment_reaches_the_next_proposal(tmp_path, serve, run_process, visitor):
    repo = toy_repo(tmp_path / "repo", "approver", generations=2)
    base = serve(repo)
    proc = run_process(repo)
    run_id = _run_id(repo)
    page = visitor.visit(f"{base}/inbox", "inbox")
    page.wait_for_selector("section.gate[data-gate='g1/promotion']", timeout=120_000)
    page.fill("section.gate input[name=name]", "Quinn")
    page.fill("section.gate textarea[name=comment]", "keep w between 2.9 and 3.1")
    page.click("section.gate button[value=request-changes]")
    page.wait_for_selector(".flash.ok")
    visitor.shot("changes-requested")
    wait_for(lambda: (repo / ".progenitor" / "runs" / run_id / "g2" / "c0" / "record.json").exists(), timeout=120,
             what="generation 2's proposal")
    page = visitor.visit(f"{base}/runs/{run_id}/g2/c0", "next-proposal")
    assert "the human's last comment: keep w between 2.9 and 3.1" in page.locator(".hypothesis").inner_text()
    first = visitor.visit(f"{base}/runs/{run_id}/g1/c0", "asked-candidate")
    assert "keep w between 2.9 and 3.1" in first.content() or "keep w between 2.9 and 3.1" in \
        visitor.visit(f"{base}/runs/{run_id}/g1/c1", "asked-candidate-2").content()
    if proc.poll() is None:  # generation 2 may wait too: let the API approve whatever waits, to finish
        wait_for(lambda: proc.poll() is not None or progenitor.pending(run_id, repo=repo), timeout=120,
                 what="generation 2 to end or wait")
        for item in progenitor.pending(run_id, repo=repo):
            progenitor.decide(run_id, "approve", by="quinn", repo=repo, gate=item.gate)
    assert proc.wait(120) == 0


def test_a_post_without_the_csrf_token_and_a_cross_site_post_are_refused(tmp_path, serve, visitor):
    repo = toy_repo(tmp_path / "repo", "approver")
    summary = progenitor.start_run(repo, progenitor.RunOptions(sandbox="process", executor="local"), detach=True)
    base = serve(repo)
    page = visitor.visit(f"{base}/inbox", "inbox")
    status = page.evaluate("""async () => {
        const body = new URLSearchParams({run: %r, gate: "g1/promotion", action: "approve", name: "mallory"});
        const r = await fetch("/decide", {method: "POST", body});
        return [r.status, await r.text()];
    }""" % summary.run_id)
    assert status[0] == 403 and "CSRF" in status[1]
    # A page of another site that posts a form to ours (served by the test, no network involved).
    evil = "http://evil.test/"
    form = (f"<form method='post' action='{base}/decide'><input name='run' value='{summary.run_id}'>"
            "<input name='gate' value='g1/promotion'><input name='action' value='approve'>"
            "<input name='name' value='mallory'><input name='csrf' value='guess'></form>"
            "<script>document.forms[0].submit()</script>")
    visitor.page.route(evil, lambda route: route.fulfill(status=200, content_type="text/html", body=form))
    visitor.page.goto(evil)
    visitor.page.wait_for_url(f"{base}/decide")
    visitor.shot("cross-site-refused")
    assert "refused" in visitor.page.content()
    visitor.external = [u for u in visitor.external if u != evil]
    assert progenitor.pending(summary.run_id, repo=repo), "nothing was decided"


def test_a_non_loopback_bind_without_a_token_is_refused_and_a_token_opens_the_page(tmp_path, serve, visitor):
    refused = cli("ui", "--repo", str(tmp_path), "--host", "0.0.0.0", check=False, timeout=60)
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert refused.returncode == 2 and len(lines) == 1 and "--token" in lines[0]
    repo = toy_repo(tmp_path / "repo", "auto")
    base = serve(repo, "--token", "letmein")
    page = visitor.visit(f"{base}/", "no-token")
    assert "needs its token" in page.content()
    page = visitor.visit(f"{base}/?token=letmein", "with-token")
    assert page.locator("h1").inner_text() == "Runs"
    assert visitor.visit(f"{base}/audit", "cookie").locator("h1").inner_text() == "Audit log"


def test_every_page_loads_with_the_network_cut_and_references_no_external_url(tmp_path, serve, visitor):
    repo = toy_repo(tmp_path / "repo", "approver", generations=2)
    summary = progenitor.start_run(repo, progenitor.RunOptions(sandbox="process", executor="local"), detach=True)
    base = serve(repo)
    for name, path in [("runs", "/"), ("run", f"/runs/{summary.run_id}"), ("candidate", f"/runs/{summary.run_id}/g1/c0"),
                       ("inbox", "/inbox"), ("audit", "/audit")]:
        visitor.visit(base + path, name)
        html = visitor.context.request.get(base + path).text()  # the document served, before any script ran
        outside = [u for u in re.findall(r"https?://[^\"'\s<>)]+", html) if urlsplit(u).hostname not in LOCAL]
        assert not outside, (name, outside)
    page = visitor.visit(f"{base}/runs/{summary.run_id}", "chart")
    page.wait_for_selector("#chart .main-svg", timeout=30_000)
    assert page.locator("#chart .scatterlayer .trace").count() >= 2, "candidates and the champion line are drawn"
    visitor.shot("chart-drawn")
