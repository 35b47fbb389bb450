"""The approval page in a real browser: Playwright driving Debian's Chromium (``make test``
installs it), headless, against ``progenitor ui`` and ``progenitor run`` started as real
processes on the toy task. Every request the page makes to anything but this machine is cut
and recorded; each test keeps a screenshot of every page it visits in its temp dir.

What a reviewer tries here: a local user with no account cannot decide; an approver decides as
themselves and a viewer cannot; a signed decision verifies and a forged one is named by
``audit verify``; a gate that needs two approvals waits for the second; Enter in an edit field
does not approve; the card shows the luck bound and the test figure; the inbox has no horizontal
overflow at 390 px."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import progenitor
from progenitor.lineage import Lineage, champion_ref
from progenitor.oversight import accounts
from progenitor.oversight.decide import default_person
from progenitor.oversight.store import DecisionStore
from progenitor.testing import make_repo, toy_task_files
from tests.helpers.gating import cli, toy_repo, wait_for
from tests.ui.serving import spawn, start_ui, stop

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


@pytest.fixture
def serve():
    """``serve(repo, *extra)``: ``progenitor ui`` on a free loopback port; its base URL and the owner's link."""
    procs = []

    def start(repo: Path, *extra: str) -> tuple[str, str]:
        proc, base, link = start_ui(repo, *extra)
        procs.append(proc)
        return base.rstrip("/"), link

    yield start
    for proc in procs:
        stop(proc)


@pytest.fixture
def run_process():
    procs = []

    def start(repo: Path) -> subprocess.Popen:
        proc = spawn("run", str(repo), "--sandbox", "process", "--executor", "local")
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)


class Visitor:
    """A browser of its own (cookies, session) whose every off-machine request is refused and
    recorded; a screenshot per visit."""

    def __init__(self, browser, shots: Path, width: int = 1280, height: int = 900, javascript: bool = True):
        self.context = browser.new_context(viewport={"width": width, "height": height}, java_script_enabled=javascript)
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

    def sign_in(self, base: str, token: str, name: str = "signed-in"):
        page = self.visit(f"{base}/?token={token}", name)
        assert "token" not in page.url, "the token left the address bar"
        return page

    def shot(self, name: str) -> Path:
        self.count += 1
        path = self.shots / f"{self.count:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self):
        self.context.close()


@pytest.fixture
def visitors(browser, tmp_path):
    """``visitors(name, **viewport)``: a browser of its own for each person."""
    made = []

    def make(name: str, **options) -> Visitor:
        v = Visitor(browser, tmp_path / f"screens-{name}", **options)
        made.append(v)
        return v

    yield make
    for v in made:
        v.close()
        assert not v.external, f"the page asked for off-machine resources: {v.external}"


@pytest.fixture
def visitor(visitors):
    return visitors("owner")


def _run_id(repo: Path) -> str:
    runs = repo / ".progenitor" / "runs"
    wait_for(lambda: runs.is_dir() and any(runs.iterdir()), what="the run to start")
    return next(runs.iterdir()).name


def _gate(page, timeout: float = 120_000) -> None:
    """The inbox reloads itself when a gate opens: wait for it."""
    page.wait_for_selector("section.gate", timeout=timeout)


def _account(repo: Path, name: str, role: str) -> str:
    return accounts.add(DecisionStore(repo), name, role, by="human:test")


def _keypair(where: Path, name: str) -> tuple[Path, str]:
    key = where / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key), "-C", name], check=True)
    return key, " ".join(Path(f"{key}.pub").read_text().split()[:2])


# -- the decision flow ---------------------------------------------------------------------------
def test_approve_in_the_inbox_after_reading_the_diff_moves_the_run_on_and_the_champion(tmp_path, serve, run_process,
                                                                                        visitor):
    repo = toy_repo(tmp_path / "repo", "approver")
    base, link = serve(repo)
    proc = run_process(repo)
    run_id = _run_id(repo)
    page = visitor.sign_in(base, link.split("token=")[1])
    page = visitor.visit(f"{base}/inbox", "inbox-empty")
    _gate(page)
    visitor.shot("inbox")
    diff = page.locator("section.gate .diff").first.inner_text()
    assert "-w: 1.0" in diff and "+w: " in diff
    candidate = page.locator("section.gate article.action h3 a").first.inner_text()
    page.click(f"text={candidate}")
    page.wait_for_selector(".diff")
    visitor.shot("candidate")
    assert "+w: " in page.locator(".diff").inner_text() and page.locator("table.metrics").count() == 1
    page = visitor.visit(f"{base}/inbox", "inbox-again")
    assert page.locator("#me").inner_text().startswith(default_person())
    page.click("section.gate button[value=approve]")
    page.wait_for_selector(".flash.ok")
    visitor.shot("approved")
    assert f"approve by human:{default_person()} recorded" in page.locator(".flash.ok").inner_text()
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
    assert f"human:{default_person()}" in audit.content()


def test_request_changes_with_a_comment_reaches_the_next_proposal(tmp_path, serve, run_process, visitor):
    repo = toy_repo(tmp_path / "repo", "approver", generations=2)
    base, link = serve(repo)
    proc = run_process(repo)
    run_id = _run_id(repo)
    visitor.sign_in(base, link.split("token=")[1])
    page = visitor.visit(f"{base}/inbox", "inbox")
    page.wait_for_selector("section.gate[data-gate='g1/promotion']", timeout=120_000)
    page.fill("section.gate textarea[name=comment]", "keep w between 2.9 and 3.1")
    page.click("section.gate button[value=request-changes]")
    page.wait_for_selector(".flash.ok")
    visitor.shot("changes-requested")
    wait_for(lambda: (repo / ".progenitor" / "runs" / run_id / "g2" / "c0" / "record.json").exists(), timeout=120,
             what="generation 2's proposal")
    page = visitor.visit(f"{base}/runs/{run_id}/g2/c0", "next-proposal")
    assert "the human's last comment: keep w between 2.9 and 3.1" in page.locator(".hypothesis").inner_text()
    if proc.poll() is None:  # generation 2 may wait too: let the API approve whatever waits, to finish
        wait_for(lambda: proc.poll() is not None or progenitor.pending(run_id, repo=repo), timeout=120,
                 what="generation 2 to end or wait")
        for item in progenitor.pending(run_id, repo=repo):
            progenitor.decide(run_id, "approve", by="quinn", repo=repo, gate=item.gate)
    assert proc.wait(120) == 0


# -- who decides -----------------------------------------------------------------------------------
def test_a_local_user_with_no_account_cannot_decide(tmp_path, serve, visitors):
    repo = toy_repo(tmp_path / "repo", "approver")
    summary = progenitor.start_run(repo, progenitor.RunOptions(sandbox="process", executor="local"), detach=True)
    base, _ = serve(repo)
    stranger = visitors("stranger")
    page = stranger.visit(f"{base}/inbox", "no-account")
    assert page.locator("h1").inner_text() == "Sign in" and summary.run_id not in page.content()
    # What such a user can still send: the sign-in page's own CSRF token, a name of their choosing.
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    status = page.evaluate("""async ([run, csrf]) => {
        const body = new URLSearchParams({run, gate: "g1/promotion", action: "approve", name: "alice", csrf});
        const r = await fetch("/decide", {method: "POST", body});
        return r.status;
    }""", [summary.run_id, csrf])
    assert status == 401
    page = stranger.visit(f"{base}/?token=guessed", "guessed-token")
    assert "belongs to no one" in page.content()
    # Nor around the page: the store is the repo owner's, an unprivileged user cannot write it.
    if subprocess.run(["id", "nobody"], capture_output=True).returncode == 0 and os.geteuid() == 0:
        store = repo / ".progenitor" / "decisions.sqlite"
        done = subprocess.run(["runuser", "-u", "nobody", "--", "sh", "-c", ': >> "$0"', str(store)],
                              capture_output=True)
        assert done.returncode != 0 and b"Permission denied" in done.stderr
    assert progenitor.pending(summary.run_id, repo=repo), "nothing was decided"
    assert not [e for e in progenitor.verify_audit(repo).signed], "and nobody signed anything"


def test_an_approver_decides_as_themselves_and_a_viewer_cannot(tmp_path, serve, visitors):
    repo = toy_repo(tmp_path / "repo", "approver")
    summary = progenitor.start_run(repo, progenitor.RunOptions(sandbox="process", executor="local"), detach=True)
    base, _ = serve(repo)
    viewer = visitors("viewer")
    viewer.sign_in(base, _account(repo, "vic", "viewer"))
    page = viewer.visit(f"{base}/inbox", "viewer-inbox")
    assert page.locator("section.gate").count() == 1 and page.locator("section.gate button[value=approve]").count() == 0
    assert "you can see this, not decide it" in page.locator("section.gate .cannot").inner_text()
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    status = page.evaluate("""async ([run, csrf]) => {
        const body = new URLSearchParams({run, gate: "g1/promotion", action: "approve", csrf});
        const r = await fetch("/decide", {method: "POST", body});
        return [r.status, await r.text()];
    }""", [summary.run_id, csrf])
    assert status[0] == 403 and "vic is a viewer" in status[1]
    approver = visitors("approver")
    approver.sign_in(base, _account(repo, "ana", "approver"))
    page = approver.visit(f"{base}/inbox", "approver-inbox")
    assert "deciding as ana" in page.locator("section.gate .buttons").inner_text()
    page.fill("section.gate textarea[name=comment]", "I read the diff")
    page.click("section.gate button[value=approve]")
    page.wait_for_selector(".flash.ok")
    approver.shot("approved-by-ana")
    assert "approve by human:ana recorded" in page.locator(".flash.ok").inner_text()
    humans = [e for e in _audit(repo) if e["actor"].startswith("human:")]
    assert [(e["actor"], e["surface"], e["comment"]) for e in humans] == [("human:ana", "web", "I read the diff")]


def _audit(repo: Path) -> list[dict]:
    from progenitor.oversight.audit import audit_log

    return audit_log(repo).entries()


def test_a_signed_decision_verifies_and_a_forged_signature_is_named_by_audit_verify(tmp_path, serve, visitors):
    alice_key, alice_pub = _keypair(tmp_path, "alice")
    files = toy_task_files(generations=1, candidates=2, oversight=(
        "mode: approver, poll_seconds: 0.05, require_signatures: true, allowed_signers: allowed_signers"))
    files["allowed_signers"] = f"alice {alice_pub}\n"
    repo = make_repo(tmp_path / "repo", files)
    summary = progenitor.start_run(repo, progenitor.RunOptions(sandbox="process", executor="local"), detach=True)
    base, _ = serve(repo)
    alice = visitors("alice")
    alice.sign_in(base, _account(repo, "alice", "approver"))
    page = alice.visit(f"{base}/inbox", "inbox")
    assert "must be signed with your SSH key" in page.locator("section.gate .signatures").inner_text()
    page.fill("section.gate textarea[name=comment]", "signed, as required")
    page.click("section.gate button[value=approve]")
    page.wait_for_selector("#statement")
    alice.shot("sign")
    href = page.locator("#statement-file").get_attribute("href")
    statement = base64.b64decode(href.split("base64,", 1)[1])
    assert statement.decode() == page.locator("#statement").text_content()
    assert b"by: human:alice" in statement and b"decision: approve" in statement
    (tmp_path / "statement.txt").write_bytes(statement)
    subprocess.run(["ssh-keygen", "-Y", "sign", "-q", "-f", str(alice_key), "-n", "progenitor-decision",
                    str(tmp_path / "statement.txt")], check=True)
    page.fill("textarea[name=signature]", (tmp_path / "statement.txt.sig").read_text())
    page.click("#confirm-button")
    page.wait_for_selector(".flash.ok")
    alice.shot("signed")
    assert "approve by human:alice recorded, signed" in page.locator(".flash.ok").inner_text()
    good = cli("audit", "verify", "--repo", str(repo))
    assert "by human:alice, signed with ssh-ed25519" in good.stdout and ": verified" in good.stdout
    # Someone with the server's files turns the signed approval into a rejection and rewrites the
    # whole log and its heads in git to match: the chain agrees, the signature does not.
    from tests.oversight.test_signatures import _rewrite_as_the_server

    _rewrite_as_the_server(repo, lambda entries: next(e for e in entries if e.get("signature")).update(
        action="reject", comment="rejected after all"))
    forged = cli("audit", "verify", "--repo", str(repo), check=False)
    assert forged.returncode == 1 and "FORGED" in forged.stdout
    assert "reject g1/promotion" in forged.stderr and "by human:alice" in forged.stderr and "forged" in forged.stderr
    page = alice.visit(f"{base}/audit", "audit-forged")
    assert "Broken:" in page.locator("#verify").inner_text() and "FORGED" in page.content()
    assert summary.run_id in forged.stderr


def test_a_gate_that_needs_two_approvals_waits_for_the_second(tmp_path, serve, run_process, visitors):
    repo = toy_repo(tmp_path / "repo", "approver", oversight="approvals: {promotion: 2}")
    base, _ = serve(repo)
    alice, bob = visitors("alice"), visitors("bob")
    alice.sign_in(base, _account(repo, "alice", "approver"))
    bob.sign_in(base, _account(repo, "bob", "approver"))
    proc = run_process(repo)
    run_id = _run_id(repo)
    page = alice.visit(f"{base}/inbox", "inbox")
    _gate(page)
    assert "Needs 2 different approvers: none yet" in page.locator("section.gate .approvals").inner_text()
    page.click("section.gate button[value=approve]")
    page.wait_for_selector(".flash.ok")
    alice.shot("first-approval")
    assert "approved by human:alice (1 of 2); it waits for 1 more approver" in page.locator(".flash.ok").inner_text()
    assert "You approved this gate" in page.locator("section.gate").inner_text()
    page.wait_for_timeout(1000)  # twenty of the run's polls: time enough to have gone on, had it
    assert proc.poll() is None and progenitor.run_status(run_id, repo=repo).status == "waiting"
    page = bob.visit(f"{base}/inbox", "bob-inbox")
    assert "approved by human:alice" in page.locator("section.gate .approvals").inner_text()
    page.click("section.gate button[value=approve]")
    page.wait_for_selector(".flash.ok")
    bob.shot("second-approval")
    assert "approve by human:alice and human:bob recorded" in page.locator(".flash.ok").inner_text()
    assert proc.wait(120) == 0, proc.stderr.read()
    assert Lineage(repo).resolve(champion_ref(run_id)) != Lineage(repo).head()


# -- the card ------------------------------------------------------------------------------------------
def test_enter_in_an_edit_field_does_not_approve_with_or_without_javascript(tmp_path, serve, visitors):
    repo = toy_repo(tmp_path / "repo", "approver")
    summary = progenitor.start_run(repo, progenitor.RunOptions(sandbox="process", executor="local"), detach=True)
    base, link = serve(repo)
    for javascript in (True, False):
        v = visitors(f"enter-js-{javascript}", javascript=javascript)
        v.sign_in(base, link.split("token=")[1])
        page = v.visit(f"{base}/inbox", "inbox")
        field = page.locator("section.gate input[name^=param__]").first  # the asked candidate's values
        field.fill("2.5")
        field.press("Enter")
        page.locator("section.gate textarea[name=comment]").press("Enter")
        page.wait_for_timeout(1500)  # what an implicit submission would have needed to reach the server
        v.shot("after-enter")
        assert page.url.endswith("/inbox") and page.locator(".flash").count() == 0
        assert progenitor.pending(summary.run_id, repo=repo), f"Enter decided (javascript={javascript})"
    assert not [e for e in _audit(repo) if e["actor"].startswith("human:")]


def test_the_card_shows_the_luck_bound_and_the_test_figure(tmp_path, serve, visitor):
    files = toy_task_files(generations=1, candidates=2, test_split=True, oversight="mode: approver, poll_seconds: 0.05")
    files["progenitor.yaml"] = files["progenitor.yaml"].replace(
        "objective: {metric: error, goal: minimize}", "objective: {metric: error, goal: minimize, range: [0, 12]}")
    repo = make_repo(tmp_path / "repo", files)
    progenitor.start_run(repo, progenitor.RunOptions(sandbox="process", executor="local"), detach=True)
    base, link = serve(repo)
    visitor.sign_in(base, link.split("token=")[1])
    page = visitor.visit(f"{base}/inbox", "card")
    luck = page.locator("section.gate .luck").inner_text()
    assert re.match(r"Selection luck: up to [\d.]+ \(3 compared on 20 holdout examples, 95%\) against a gain of [\d.]+",
                    luck)
    assert page.locator("section.gate .luck.warn").is_visible(), "a gain within the bound is flagged"
    test = page.locator("section.gate .test").inner_text()
    assert re.match(r"Test split \(test_error\): baseline [\d.]+, champion [\d.]+; this candidate: scored once promoted",
                    test)
    assert page.locator("table.generation tr.asked").count() == 1
    assert "↓ lower is better" in page.locator("table.metrics").first.inner_text()


def test_the_inbox_has_no_horizontal_overflow_at_phone_width(tmp_path, serve, visitors):
    repo = toy_repo(tmp_path / "repo", "approver", oversight="approve_training_above: {cpu_hours: 0}")
    summary = progenitor.start_run(repo, progenitor.RunOptions(sandbox="process", executor="local"), detach=True)
    base, link = serve(repo)
    phone = visitors("phone", width=390, height=844)
    phone.sign_in(base, link.split("token=")[1])
    for name, path in [("inbox", "/inbox"), ("runs", "/"), ("run", f"/runs/{summary.run_id}"), ("audit", "/audit")]:
        page = phone.visit(base + path, f"phone-{name}")
        widths = page.evaluate("[document.documentElement.scrollWidth, document.body.scrollWidth, window.innerWidth]")
        assert widths[0] <= 390 and widths[1] <= 390, (name, widths)
    inbox = phone.visit(f"{base}/inbox", "phone-inbox-again")
    assert inbox.locator("section.gate").count() == 1 and inbox.locator("section.gate button[value=approve]").is_visible()


# -- the guards ------------------------------------------------------------------------------------
def test_a_post_without_the_csrf_token_and_a_cross_site_post_are_refused(tmp_path, serve, visitor):
    repo = toy_repo(tmp_path / "repo", "approver")
    summary = progenitor.start_run(repo, progenitor.RunOptions(sandbox="process", executor="local"), detach=True)
    base, link = serve(repo)
    visitor.sign_in(base, link.split("token=")[1])
    page = visitor.visit(f"{base}/inbox", "inbox")
    status = page.evaluate("""async (run) => {
        const body = new URLSearchParams({run, gate: "g1/promotion", action: "approve"});
        const r = await fetch("/decide", {method: "POST", body});
        return [r.status, await r.text()];
    }""", summary.run_id)
    assert status[0] == 403 and "CSRF" in status[1]
    # A page of another site that posts a form to ours (served by the test, no network involved).
    evil = "http://evil.test/"
    form = (f"<form method='post' action='{base}/decide'><input name='run' value='{summary.run_id}'>"
            "<input name='gate' value='g1/promotion'><input name='action' value='approve'>"
            "<input name='csrf' value='guess'></form><script>document.forms[0].submit()</script>")
    visitor.page.route(evil, lambda route: route.fulfill(status=200, content_type="text/html", body=form))
    visitor.page.goto(evil)
    visitor.page.wait_for_url(f"{base}/decide")
    visitor.shot("cross-site-refused")
    assert "refused" in visitor.page.content() or "Sign in" in visitor.page.content()
    visitor.external = [u for u in visitor.external if u != evil]
    assert progenitor.pending(summary.run_id, repo=repo), "nothing was decided"


def test_a_non_loopback_bind_over_plain_http_is_refused_and_the_printed_link_signs_in_once(tmp_path, serve, visitor):
    refused = cli("ui", "--repo", str(tmp_path), "--host", "0.0.0.0", check=False, timeout=60)
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert refused.returncode == 2 and len(lines) == 1 and "--certfile" in lines[0]
    repo = toy_repo(tmp_path / "repo", "auto")
    base, link = serve(repo)
    page = visitor.visit(f"{base}/", "no-token")
    assert page.locator("h1").inner_text() == "Sign in"
    page = visitor.visit(link, "with-token")
    assert page.locator("h1").inner_text() == "Runs" and page.url == f"{base}/", "the token left the address bar"
    assert visitor.visit(f"{base}/audit", "cookie").locator("h1").inner_text() == "Audit log"


def test_every_page_loads_with_the_network_cut_and_references_no_external_url(tmp_path, serve, visitor):
    repo = toy_repo(tmp_path / "repo", "approver", generations=2)
    summary = progenitor.start_run(repo, progenitor.RunOptions(sandbox="process", executor="local"), detach=True)
    base, link = serve(repo)
    visitor.sign_in(base, link.split("token=")[1])
    for name, path in [("runs", "/"), ("run", f"/runs/{summary.run_id}"), ("candidate", f"/runs/{summary.run_id}/g1/c0"),
                       ("inbox", "/inbox"), ("audit", "/audit"), ("users", "/users"),
                       ("compare", f"/runs/{summary.run_id}/compare?c=g1/c0&c=g1/c1")]:
        visitor.visit(base + path, name)
        html = visitor.context.request.get(base + path).text()  # the document served, before any script ran
        outside = [u for u in re.findall(r"https?://[^\"'\s<>)]+", html) if urlsplit(u).hostname not in LOCAL]
        assert not outside, (name, outside)
    page = visitor.visit(f"{base}/runs/{summary.run_id}", "chart")
    page.wait_for_selector("#chart .main-svg", timeout=30_000)
    assert page.locator("#chart .scatterlayer .trace").count() >= 3, "candidates, the one at the gate, the champion"
    assert page.locator("details.gen[open] li.asked").count() >= 1, "the candidate at the gate is marked in the tree"
    visitor.shot("chart-drawn")
    assert json.loads(page.locator("#chart-data").text_content())["data"][-2]["name"] == "at the gate"
