"""The approval page without a browser: every page needs a person who signed in (an account's
token, the owner's link, a trusted proxy's header), a person decides as themselves and only as
their role allows, the guards hold (CSRF, Origin, Host, the bind), messages in the address are
codes, and the card shows what a careful approver needs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

import progenitor
from progenitor.cli import cli
from progenitor.options import RunOptions
from progenitor.oversight import accounts
from progenitor.oversight.audit import audit_log
from progenitor.oversight.store import DecisionStore
from progenitor.testing import make_repo, scripted, toy_task_files
from tests.helpers.gating import OPTIONS, toy_repo

ORIGIN = "http://127.0.0.1:8765"


@pytest.fixture(scope="module")
def waiting(tmp_path_factory):
    repo = toy_repo(tmp_path_factory.mktemp("ui") / "repo", "approver")
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS), detach=True)
    assert summary.status == "waiting"
    return repo, summary.run_id


def app_of(repo: Path, **options):
    from progenitor.ui import create_app

    return create_app(repo, port=8765, owner="owner", **options)


def client(repo: Path, token: str | None = "owner", base_url: str = ORIGIN, peer: str = "127.0.0.1", **options):
    """A browser on the page; ``token``: signed in with it ("owner": the owner's link; None: not at all)."""
    from fastapi.testclient import TestClient

    app = app_of(repo, **options)
    c = TestClient(app, base_url=base_url, client=(peer, 50000))
    c.app_site = app.state.site
    if token is not None:
        token = app.state.site.auth.owner_token if token == "owner" else token
        assert c.get(f"/?token={token}", follow_redirects=False).status_code == 303
    return c


def account(repo: Path, name: str, role: str) -> str:
    return accounts.add(DecisionStore(repo), name, role, by="human:test")


def _form(html: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]*)"', html).group(1)


def _decide(c, run_id: str, action: str = "approve", **extra):
    html = c.get("/inbox").text
    data = {"run": run_id, "gate": "g1/promotion", "action": action, "csrf": _form(html, "csrf"), **extra}
    return c.post("/decide", data=data, headers={"Origin": ORIGIN})


def _humans(repo: Path) -> list[dict]:
    return [e for e in audit_log(repo).entries() if e["actor"].startswith("human:")]


def test_every_page_needs_a_person_and_an_anonymous_visitor_gets_the_sign_in_form(waiting):
    repo, run_id = waiting
    c = client(repo, token=None)
    for path in ("/", f"/runs/{run_id}", f"/runs/{run_id}/g1/c0", "/inbox", "/audit", "/users", "/api/fingerprint"):
        page = c.get(path)
        assert page.status_code == 401 and 'action="/login"' in page.text and run_id not in page.text, path
    assert c.get("/static/app.css").status_code == 200 and c.get("/login").status_code == 200
    html = c.get("/login").text
    refused = c.post("/decide", data={"run": run_id, "gate": "g1/promotion", "action": "approve", "name": "alice",
                                      "csrf": _form(html, "csrf")}, headers={"Origin": ORIGIN})
    assert refused.status_code == 401 and not _humans(repo) and progenitor.pending(run_id, repo=repo)


def test_every_page_renders_for_a_signed_in_person_and_names_no_external_url(waiting):
    repo, run_id = waiting
    c = client(repo)
    for path in ("/", f"/runs/{run_id}", f"/runs/{run_id}/g1/c0", "/inbox", "/audit", "/users",
                 f"/runs/{run_id}/compare?c=g1/c0&c=g1/c1"):
        page = c.get(path)
        assert page.status_code == 200, path
        urls = re.findall(r"(?:src|href|action)=\"([^\"]+)\"", page.text)
        assert urls and all(u.startswith(("/", "?", "data:")) or u == "" for u in urls), (path, urls)
        assert "http://" not in page.text and "https://" not in page.text, path
        assert "default-src 'self'" in page.headers["content-security-policy"]
    inbox = c.get("/inbox").text
    assert "g1/promotion" in inbox and 'class="highlight"' in inbox and "w: 1.0" in inbox
    assert "Approve" in inbox and "Request changes" in inbox and "Edit and train" in inbox
    assert 'name="name"' not in inbox, "nobody types who they are"
    run = c.get(f"/runs/{run_id}").text
    assert 'id="chart-data"' in run and "/assets/plotly.min.js" in run and "waiting" in run


def test_the_chart_library_comes_from_the_installed_plotly_package(waiting):
    from importlib.resources import files

    repo, _ = waiting
    served = client(repo).get("/assets/plotly.min.js")
    shipped = Path(str(files("plotly") / "package_data" / "plotly.min.js")).read_bytes()
    assert served.status_code == 200 and served.content == shipped
    assert not list((Path(progenitor.__file__).parent / "ui" / "static").glob("*plotly*")), "no committed copy"


def test_a_post_without_the_csrf_token_or_from_another_origin_is_refused(waiting):
    repo, run_id = waiting
    c = client(repo)
    html = c.get("/inbox").text
    form = {"run": run_id, "gate": "g1/promotion", "action": "approve"}
    refused = c.post("/decide", data=form, headers={"Origin": ORIGIN}, follow_redirects=False)
    assert refused.status_code == 403 and "CSRF" in refused.text
    forged = c.post("/decide", data={**form, "csrf": "0" * 64}, headers={"Origin": ORIGIN}, follow_redirects=False)
    assert forged.status_code == 403
    cross = c.post("/decide", data={**form, "csrf": _form(html, "csrf")}, headers={"Origin": "http://evil.test"},
                   follow_redirects=False)
    assert cross.status_code == 403 and "cross-site" in cross.text
    other = client(repo).post("/decide", data={**form, "csrf": _form(html, "csrf")}, follow_redirects=False)
    assert other.status_code == 403, "a token is good for its own session only"
    assert not _humans(repo) and progenitor.pending(run_id, repo=repo)


def test_a_page_opened_under_another_host_name_is_refused(waiting):
    repo, _ = waiting
    assert client(repo, token=None).get("/login", headers={"Host": "attacker.test:8765"}).status_code == 400


def test_a_sign_in_link_is_exchanged_for_a_cookie_and_taken_out_of_the_address(waiting):
    repo, _ = waiting
    c = client(repo, token=None)
    token = c.app_site.auth.owner_token
    assert c.get("/?token=wrong", follow_redirects=False).status_code == 401
    assert c.get("/?token=s3cr%C3%A9t", follow_redirects=False).status_code == 401, "non-ASCII: refused, not a crash"
    done = c.get(f"/runs?x=1&token={token}&y=2", follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/runs?x=1&y=2"
    cookie = done.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
    assert c.get("/inbox").status_code == 200, "the cookie carries the session"
    html = c.get("/inbox").text
    out = c.post("/logout", data={"csrf": _form(html, "csrf")}, headers={"Origin": ORIGIN}, follow_redirects=False)
    assert out.status_code == 303 and c.get("/inbox").status_code == 401


def test_under_tls_the_session_cookie_is_secure(waiting):
    repo, _ = waiting
    c = client(repo, token=None, base_url="https://127.0.0.1:8765")
    done = c.get(f"/inbox?token={c.app_site.auth.owner_token}", follow_redirects=False)
    assert done.status_code == 303 and "Secure" in done.headers["set-cookie"]


@pytest.mark.loop
def test_a_viewer_sees_but_cannot_decide_and_an_approver_decides_as_themselves(tmp_path):
    repo = toy_repo(tmp_path / "repo", "approver")
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS), detach=True)
    viewer = client(repo, token=account(repo, "vic", "viewer"))
    page = viewer.get("/inbox").text
    assert "g1/promotion" in page and "you can see this, not decide it" in page and 'value="approve"' not in page
    refused = _decide(viewer, summary.run_id)
    assert refused.status_code == 403 and "vic is a viewer" in refused.text and not _humans(repo)
    approver = client(repo, token=account(repo, "ana", "approver"))
    done = _decide(approver, summary.run_id, name="alice", comment="looks right")  # a typed name counts for nothing
    assert done.status_code == 200 and "approve by human:ana recorded" in done.text
    [entry] = _humans(repo)
    assert entry["actor"] == "human:ana" and entry["surface"] == "web" and entry["comment"] == "looks right"
    assert approver.get("/users").status_code == 403, "an approver does not manage accounts"


@pytest.mark.loop
def test_a_trusted_proxy_names_the_person_and_no_one_else_can(tmp_path):
    repo = toy_repo(tmp_path / "repo", "approver")
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS), detach=True)
    account(repo, "pat@example.org", "approver")
    proxied = client(repo, token=None, peer="10.1.2.3", proxies=["10.1.2.0/24"])
    header = {"X-Forwarded-User": "Pat@Example.org", "Host": "progenitor.example.org"}
    page = proxied.get("/inbox", headers=header)
    assert page.status_code == 200 and "pat@example.org" in page.text
    html = page.text
    done = proxied.post("/decide", headers={**header, "Origin": "http://progenitor.example.org"}, data={
        "run": summary.run_id, "gate": "g1/promotion", "action": "approve", "csrf": _form(html, "csrf")})
    assert "approve by human:pat@example.org recorded" in done.text
    # The same header from anywhere else is nobody's word; an unknown user gets no account.
    direct = client(repo, token=None, peer="10.9.9.9", proxies=["10.1.2.0/24"])
    assert direct.get("/inbox", headers={"X-Forwarded-User": "pat@example.org"}).status_code == 401
    stranger = proxied.get("/inbox", headers={**header, "X-Forwarded-User": "mallory"})
    assert stranger.status_code == 401 and "no account mallory" in stranger.text


def test_a_removed_account_or_a_renewed_token_is_signed_out_at_once(waiting):
    repo, _ = waiting
    store = DecisionStore(repo)
    c = client(repo, token=account(repo, "rey", "viewer"))
    assert c.get("/inbox").status_code == 200
    accounts.renew(store, "rey")
    assert c.get("/inbox").status_code == 401
    fresh = client(repo, token=accounts.renew(store, "rey"))
    accounts.remove(store, "rey")
    assert fresh.get("/inbox").status_code == 401


@pytest.mark.loop
def test_messages_in_the_address_are_codes_and_say_only_what_the_store_holds(tmp_path):
    repo = toy_repo(tmp_path / "repo", "approver")
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS), detach=True)
    c = client(repo)
    for query in ("done=approve+by+human%3Aalice+recorded", "error=<b>anything</b>", "done=signed-in-as-root",
                  f"done=decided&run={summary.run_id}&gate=g1/promotion"):
        page = c.get(f"/inbox?{query}").text
        assert 'class="flash ok"' not in page and 'class="flash error"' not in page and "alice" not in page, query
    done = _decide(c, summary.run_id)
    assert done.url.path == "/inbox" and set(dict(done.url.params)) == {"done", "run", "gate"}
    assert "g1/promotion of run" in done.text and "approve by human:owner recorded" in done.text


def test_an_unknown_run_or_candidate_is_a_404_not_a_500(waiting):
    repo, run_id = waiting
    c = client(repo)
    for path in ("/runs/r20990101-dead/g1/c0", f"/runs/{run_id}/g7/c3", "/runs/nope", "/runs/nope/compare?c=g1/c0",
                 f"/runs/{run_id}/compare?c=g1/c9"):
        assert c.get(path).status_code == 404, path


def test_enter_cannot_decide_the_first_button_of_every_decision_form_is_a_disabled_one(waiting):
    repo, _ = waiting
    html = client(repo).get("/inbox").text
    forms = re.findall(r'<form method="post" action="/decide".*?</form>', html, re.S)
    assert forms
    for form in forms:
        first = re.search(r"<button[^>]*>", form).group(0)
        assert "disabled" in first and "enter-trap" in first


@pytest.mark.loop
def test_a_decision_from_the_page_goes_through_the_one_api_and_a_second_is_told_the_first(tmp_path):
    repo = toy_repo(tmp_path / "repo", "approver")
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS), detach=True)
    c = client(repo, token=account(repo, "hana", "approver"))
    html = c.get("/inbox").text
    done = c.post("/decide", headers={"Origin": ORIGIN}, data={
        "run": summary.run_id, "gate": "g1/promotion", "action": "approve", "csrf": _form(html, "csrf"),
        "seen": _form(html, "seen"), "comment": "from the page"})
    assert "approve by human:hana recorded" in done.text
    twice = c.post("/decide", headers={"Origin": ORIGIN}, data={
        "run": summary.run_id, "gate": "g1/promotion", "action": "reject", "comment": "no", "csrf": _form(html, "csrf")})
    assert twice.status_code == 409 and "already decided: approve by human:hana" in twice.text
    summary = progenitor.resume_run(summary.run_id, repo=repo)
    assert summary.status == "finished" and summary.champion_commit == _humans(repo)[0]["commit"]


@pytest.mark.loop
def test_a_revert_from_the_run_page_needs_an_admin_and_is_audited(tmp_path):
    from progenitor.lineage import Lineage, champion_ref

    repo = toy_repo(tmp_path / "repo", "auditor")
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS))
    approver = client(repo, token=account(repo, "ann", "approver"))
    html = approver.get(f"/runs/{summary.run_id}").text
    assert 'action="/revert"' not in html
    refused = approver.post("/revert", headers={"Origin": ORIGIN}, data={
        "run": summary.run_id, "gen": "1", "comment": "no", "csrf": _form(html, "csrf")})
    assert refused.status_code == 403
    admin = client(repo, token=account(repo, "lee", "admin"))
    html = admin.get(f"/runs/{summary.run_id}").text
    assert 'action="/revert"' in html and '<option value="1">g1</option>' in html
    done = admin.post("/revert", headers={"Origin": ORIGIN}, data={
        "run": summary.run_id, "gen": "1", "comment": "not convinced", "csrf": _form(html, "csrf")})
    assert "generation 1 of run" in done.text and "reverted by human:lee" in done.text
    assert Lineage(repo).resolve(champion_ref(summary.run_id)) == Lineage(repo).head()
    [entry] = [e for e in audit_log(repo).entries() if e["action"] == "revert"]
    assert entry["surface"] == "web" and entry["actor"] == "human:lee"


def test_an_admin_makes_an_account_whose_token_is_shown_once_on_the_page_never_in_an_address(waiting):
    repo, _ = waiting
    c = client(repo)
    html = c.get("/users").text
    made = c.post("/users", headers={"Origin": ORIGIN}, data={"what": "add", "name": "Quinn", "role": "viewer",
                                                                "csrf": _form(html, "csrf")}, follow_redirects=False)
    assert made.status_code == 200 and "location" not in made.headers
    token = re.search(r'<pre id="new-token">([^<]+)</pre>', made.text).group(1)
    assert accounts.authenticate(DecisionStore(repo), token).name == "quinn"
    assert token not in c.get("/users").text, "shown once"
    gone = c.post("/users", headers={"Origin": ORIGIN}, data={"what": "remove", "name": "quinn",
                                                                "csrf": _form(html, "csrf")})
    assert "account quinn removed" in gone.text and client(repo, token=None).get(f"/?token={token}").status_code == 401


@pytest.mark.loop
def test_an_edit_from_the_inbox_sends_only_the_changed_values(tmp_path):
    repo = toy_repo(tmp_path / "repo", "approver", oversight="approve_training_above: {cpu_hours: 0}")
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS), detach=True)
    c = client(repo)
    html = c.get("/inbox").text
    assert 'name="param__c0__w"' in html and 'name="param__c1__w"' in html
    was = {k: _form(html, f"was__{k}__w") for k in ("c0", "c1")}
    done = c.post("/decide", headers={"Origin": ORIGIN}, data={
        "run": summary.run_id, "gate": "g1/training", "action": "edit", "csrf": _form(html, "csrf"),
        "param__c0__w": "3.0", "was__c0__w": was["c0"], "param__c1__w": was["c1"], "was__c1__w": was["c1"]})
    assert "edit by human:owner recorded" in done.text
    response = DecisionStore(repo).decision(summary.run_id, "g1/training").response
    assert response["decisions"] == [{"type": "edit", "edited_action": {"name": "train", "args": {"params": {"w": 3.0}}}},
                                     {"type": "approve"}]


@pytest.mark.loop
def test_after_an_edit_the_next_gate_is_about_the_edited_candidate_and_says_so(tmp_path):
    repo = toy_repo(tmp_path / "repo", "approver")
    architect = scripted([[{"hypothesis": "close", "params": {"w": 2.9}}, {"hypothesis": "far", "params": {"w": 2.0}}]])
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS), detach=True, architect=architect)
    [gate] = progenitor.pending(summary.run_id, repo=repo)
    assert gate.request["action_requests"][0]["args"]["candidate"] == "g1/c0"
    progenitor.decide(summary.run_id, "edit", by="eve", edits={"c0": {"w": 2.95}}, repo=repo)
    summary = progenitor.resume_run(summary.run_id, repo=repo, detach=True, architect=architect)
    [gate] = progenitor.pending(summary.run_id, repo=repo)
    args = gate.request["action_requests"][0]["args"]
    assert gate.gate == "g1/promotion-2" and args["candidate"] == "g1/c2", "not the original, asked again"
    assert "edited by human:eve from g1/c0" in gate.description and args["edited_from"]["candidate"] == "g1/c0"
    page = client(repo).get("/inbox").text
    assert "edited from g1/c0" in page and "the gate asks about the edited one" in page


@pytest.mark.loop
def test_approving_an_escalation_asks_to_confirm_first(tmp_path):
    files = toy_task_files(generations=1, candidates=1, oversight="mode: auto, poll_seconds: 0.05, perfect: 0")
    repo = make_repo(tmp_path / "repo", files)
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS), detach=True,
                                   architect=scripted([[{"hypothesis": "exactly right", "params": {"w": 3.0}}]]))
    assert summary.status == "waiting"
    c = client(repo)
    inbox = c.get("/inbox").text
    assert "Escalated: policy would not decide this alone" in inbox and "Approve…" in inbox
    asked = _decide(c, summary.run_id)
    assert asked.status_code == 200 and "Approve an escalation?" in asked.text and "a perfect score" in asked.text
    assert not _humans(repo) and progenitor.pending(summary.run_id, repo=repo), "nothing decided yet"
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', asked.text))
    assert fields["confirmed"] == "yes" and fields["action"] == "approve"
    done = c.post("/decide", data=fields, headers={"Origin": ORIGIN})
    assert "approve by human:owner recorded" in done.text


@pytest.mark.loop
def test_hidden_and_direction_changing_characters_in_a_diff_are_marked(tmp_path):
    repo = toy_repo(tmp_path / "repo", "approver")
    trojan = "# if access != 'user\u202e \u2066': # admins only\u2069\u2066\nimport os  # \u200b\n"
    architect = scripted([[{"hypothesis": "annotate \u202etxt.exe", "edits": {"NOTES.py": trojan}, "params": {"w": 2.9}}]])
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS), detach=True, architect=architect)
    c = client(repo)
    for page in (c.get("/inbox").text, c.get(f"/runs/{summary.run_id}/g1/c0").text):
        assert '<mark class="invisible" title="RIGHT-TO-LEFT OVERRIDE">U+202E</mark>' in page
        assert 'title="LEFT-TO-RIGHT ISOLATE">U+2066</mark>' in page and 'title="ZERO WIDTH SPACE">U+200B</mark>' in page
        assert "hidden or direction-changing character" in page
        assert "\u202e" not in page and "\u2066" not in page and "\u200b" not in page


def test_the_marker_cannot_be_faked_or_escaped_by_the_text_itself():
    from progenitor.ui.text import diff_html, reveal

    fake = "\ue000202E\ue001 <script>x</script> \ufeff"
    shown = str(reveal(fake))
    assert "&lt;script&gt;" in shown and "<script>" not in shown
    assert shown.count('<mark class="invisible"') == 3, "the private-use sentinels themselves are marked"
    assert 'title="ZERO WIDTH NO-BREAK SPACE">U+FEFF' in shown and "U+E000" in shown
    assert "U+202E" not in shown, "no marker for a character the text did not hold"
    assert "<mark" in str(diff_html("+a\u202eb\n")) and "\u202e" not in str(diff_html("+a\u202eb\n"))


@pytest.mark.loop
def test_the_card_shows_the_luck_bound_the_test_figures_directions_guards_and_the_generation(tmp_path):
    files = toy_task_files(generations=1, candidates=2, test_split=True,
                           oversight="mode: approver, poll_seconds: 0.05")
    files["progenitor.yaml"] = files["progenitor.yaml"].replace(
        "objective: {metric: error, goal: minimize}", "objective: {metric: error, goal: minimize, range: [0, 12]}")
    repo = make_repo(tmp_path / "repo", files)
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS), detach=True)
    [gate] = progenitor.pending(summary.run_id, repo=repo)
    luck = gate.request["context"]["luck"]
    assert luck["holdout_n"] == 20 and luck["compared"] == 3 and luck["bound"] == pytest.approx(
        12 * ((__import__("math").log(2 * 3 / 0.05)) / 40) ** 0.5)
    page = client(repo).get("/inbox").text
    assert f"Selection luck: up to {luck['bound']:.4g} (3 compared on 20 holdout examples, 95%)" in page
    assert re.search(r"Test split \(test_error\): baseline [\d.]+, champion [\d.]+; this candidate: scored once promoted",
                     page)
    assert "↓ lower is better" in page and "at most 10" in page, "the objective's direction and the params guard"
    assert "Generation 1: every candidate (2)" in page and page.count('class="asked"') == 1
    [other] = [r for r in gate.request["context"]["generation"] if not r["asked"]]
    assert re.fullmatch(r"not selected: g1/c\d has the better error \([\d.]+\)|no better than the champion on error",
                        other["why"]), other
    assert other["why"] in page, "why the other lost, on the card"
    assert re.search(r"Cost: [\d.]+ (ms|s) of CPU", page), "the cost in units a person reads"
    assert "{'cpu_seconds'" not in page and "{'w':" not in page, "no Python dicts on the card"


@pytest.mark.loop
def test_compare_puts_candidates_side_by_side_and_the_lineage_folds_by_generation(tmp_path):
    repo = toy_repo(tmp_path / "repo", "auto", generations=2)
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS))
    c = client(repo)
    run = c.get(f"/runs/{summary.run_id}").text
    gens = re.findall(r'<details class="gen" data-gen="(\d+)"( open)?>', run)
    assert [g for g, _ in gens] == ["1", "2"] and [bool(o) for _, o in gens] == [False, True], "only the last is open"
    assert run.count('name="c" value="g') == 4 and 'action="/runs/' in run
    page = c.get(f"/runs/{summary.run_id}/compare?c=g1/c0&c=g2/c1")
    assert page.status_code == 200
    table = re.search(r'<table class="compare".*?</table>', page.text, re.S).group(0)
    assert ">g1/c0</a>" in table and ">g2/c1</a>" in table and "error" in table and table.count("<code>") >= 2
    assert page.text.count('<div class="diff">') == 2
    assert "Tick two or more" in c.get(f"/runs/{summary.run_id}/compare?c=g1/c0").text


def test_a_non_loopback_bind_over_plain_http_exits_2_with_one_sentence(tmp_path):
    result = CliRunner().invoke(cli, ["ui", "--repo", str(tmp_path), "--host", "0.0.0.0"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "in the clear" in lines[0] and "--certfile" in lines[0]


@pytest.mark.loop
def test_tls_serves_https_with_a_secure_cookie(tmp_path):
    """The real server, with a certificate made here: HTTPS answers, the cookie is Secure."""
    import http.client
    import ssl

    from tests.ui.serving import spawn_ui

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
    with spawn_ui(tmp_path, "--certfile", str(cert), "--keyfile", str(key)) as (base, link):
        assert base.startswith("https://") and link.startswith(base + "?token=")
        conn = http.client.HTTPSConnection("127.0.0.1", int(base.rsplit(":", 1)[1].rstrip("/")),
                                           context=ssl._create_unverified_context(), timeout=30)
        conn.request("GET", "/" + link[len(base):])
        answer = conn.getresponse()
        assert answer.status == 303 and answer.getheader("location") == "/"
        assert "Secure" in answer.getheader("set-cookie") and "HttpOnly" in answer.getheader("set-cookie")
        conn.close()
