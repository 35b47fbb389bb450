"""The approval page without a browser: every page renders from a real waiting run, decisions
go through the one API, and the page's guards (CSRF, Origin, Host, token, the bind) hold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import progenitor
from progenitor.cli import cli
from progenitor.options import RunOptions
from progenitor.oversight.audit import audit_log
from tests.helpers.gating import OPTIONS, toy_repo

ORIGIN = "http://127.0.0.1:8765"


@pytest.fixture(scope="module")
def waiting(tmp_path_factory):
    repo = toy_repo(tmp_path_factory.mktemp("ui") / "repo", "approver")
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS), detach=True)
    assert summary.status == "waiting"
    return repo, summary.run_id


def client(repo: Path, token=None):
    from fastapi.testclient import TestClient

    from progenitor.ui import create_app

    return TestClient(create_app(repo, port=8765, token=token), base_url=ORIGIN)


def _form(html: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]*)"', html).group(1)


def test_every_page_renders_and_names_no_external_url(waiting):
    repo, run_id = waiting
    c = client(repo)
    for path in ("/", f"/runs/{run_id}", f"/runs/{run_id}/g1/c0", "/inbox", "/audit"):
        page = c.get(path)
        assert page.status_code == 200, path
        urls = re.findall(r"(?:src|href|action)=\"([^\"]+)\"", page.text)
        assert urls and all(u.startswith("/") or u.startswith("?") or u == "" for u in urls), (path, urls)
        assert "http://" not in page.text and "https://" not in page.text, path
        assert "default-src 'self'" in page.headers["content-security-policy"]
    inbox = c.get("/inbox").text
    assert "g1/promotion" in inbox and 'class="highlight"' in inbox and "w: 1.0" in inbox
    assert "Approve" in inbox and "Request changes" in inbox and "Edit and train" in inbox
    run = c.get(f"/runs/{run_id}").text
    assert 'id="chart-data"' in run and "/assets/plotly.min.js" in run and "waiting" in run


def test_the_chart_library_comes_from_the_installed_plotly_package(waiting):
    from importlib.resources import files

    repo, _ = waiting
    served = client(repo).get("/assets/plotly.min.js")
    shipped = Path(str(files("plotly") / "package_data" / "plotly.min.js")).read_bytes()
    assert served.status_code == 200 and served.content == shipped
    assert not list((Path(progenitor.__file__).parent / "ui" / "static").glob("*plotly*")), "no committed copy"
    css = client(repo).get("/assets/pygments.css")
    assert css.status_code == 200 and ".highlight" in css.text


def test_a_post_without_the_csrf_token_or_from_another_origin_is_refused(waiting):
    repo, run_id = waiting
    c = client(repo)
    html = c.get("/inbox").text
    form = {"run": run_id, "gate": "g1/promotion", "action": "approve", "name": "mallory"}
    refused = c.post("/decide", data=form, headers={"Origin": ORIGIN}, follow_redirects=False)
    assert refused.status_code == 403 and "CSRF" in refused.text
    forged = c.post("/decide", data={**form, "csrf": "0" * 64}, headers={"Origin": ORIGIN}, follow_redirects=False)
    assert forged.status_code == 403
    cross = c.post("/decide", data={**form, "csrf": _form(html, "csrf")}, headers={"Origin": "http://evil.test"},
                   follow_redirects=False)
    assert cross.status_code == 403 and "cross-site" in cross.text
    other_session = client(repo).post("/decide", data={**form, "csrf": _form(html, "csrf")}, follow_redirects=False)
    assert other_session.status_code == 403, "a token is good for its own session only"
    assert not [e for e in audit_log(repo).entries() if e["actor"].startswith("human:")]
    assert progenitor.pending(run_id, repo=repo)


def test_a_decision_needs_the_deciders_name(waiting):
    repo, run_id = waiting
    c = client(repo)
    html = c.get("/inbox").text
    done = c.post("/decide", data={"run": run_id, "gate": "g1/promotion", "action": "approve", "name": " ",
                                   "csrf": _form(html, "csrf")}, headers={"Origin": ORIGIN})
    assert "needs your name" in done.text and progenitor.pending(run_id, repo=repo)


def test_a_page_opened_under_another_host_name_is_refused(waiting):
    repo, _ = waiting
    assert client(repo).get("/", headers={"Host": "attacker.test:8765"}).status_code == 400


def test_with_a_token_the_page_needs_it_once_then_a_cookie_carries_it(waiting):
    repo, _ = waiting
    c = client(repo, token="s3cret")
    assert c.get("/").status_code == 401 and c.get("/?token=wrong").status_code == 401
    assert c.get("/?token=s3cr%C3%A9t").status_code == 401, "a non-ASCII token is refused, not a crash"
    assert c.get("/", headers={"cookie": "progenitor_auth_8765=caf\u00e9".encode()}).status_code == 401
    assert c.get("/?token=s3cret").status_code == 200
    assert c.get("/inbox").status_code == 200, "the cookie set by the token URL lets the browser in"


def test_a_non_loopback_bind_without_a_token_exits_2_with_one_sentence(tmp_path):
    result = CliRunner().invoke(cli, ["ui", "--repo", str(tmp_path), "--host", "0.0.0.0"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "exposes it beyond this machine" in lines[0] and "--token" in lines[0]


def test_a_decision_from_the_page_goes_through_the_one_api(tmp_path):
    repo = toy_repo(tmp_path / "repo", "approver")
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS), detach=True)
    c = client(repo)
    html = c.get("/inbox").text
    done = c.post("/decide", headers={"Origin": ORIGIN}, data={
        "run": summary.run_id, "gate": "g1/promotion", "action": "approve", "name": "Hana Web",
        "csrf": _form(html, "csrf"), "seen": _form(html, "seen"), "comment": "from the page"})
    assert "approve by human:Hana Web recorded" in done.text
    [entry] = [e for e in audit_log(repo).entries() if e["actor"].startswith("human:")]
    assert entry["surface"] == "web" and entry["comment"] == "from the page"
    twice = c.post("/decide", headers={"Origin": ORIGIN}, data={
        "run": summary.run_id, "gate": "g1/promotion", "action": "reject", "name": "Ivo", "comment": "no",
        "csrf": _form(html, "csrf")})
    assert "already decided: approve by human:Hana Web" in twice.text
    summary = progenitor.resume_run(summary.run_id, repo=repo)
    assert summary.status == "finished" and summary.champion_commit == entry["commit"]


def test_a_revert_from_the_run_page_moves_the_champion_back_and_is_audited(tmp_path):
    from progenitor.lineage import Lineage, champion_ref

    repo = toy_repo(tmp_path / "repo", "auditor")
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS))
    c = client(repo)
    html = c.get(f"/runs/{summary.run_id}").text
    assert 'action="/revert"' in html and '<option value="1">g1</option>' in html
    done = c.post("/revert", headers={"Origin": ORIGIN}, data={
        "run": summary.run_id, "gen": "1", "name": "Lee", "comment": "not convinced", "csrf": _form(html, "csrf")})
    assert "generation 1 reverted by human:Lee" in done.text
    assert Lineage(repo).resolve(champion_ref(summary.run_id)) == Lineage(repo).head()
    [entry] = [e for e in audit_log(repo).entries() if e["action"] == "revert"]
    assert entry["surface"] == "web" and entry["actor"] == "human:Lee"
    assert "reverted" in c.get(f"/runs/{summary.run_id}").text


def test_an_edit_from_the_inbox_sends_only_the_changed_values(tmp_path):
    repo = toy_repo(tmp_path / "repo", "approver", oversight="approve_training_above: {cpu_hours: 0}")
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS), detach=True)
    c = client(repo)
    html = c.get("/inbox").text
    assert 'name="param__c0__w"' in html and 'name="param__c1__w"' in html
    was = {k: _form(html, f"was__{k}__w") for k in ("c0", "c1")}
    done = c.post("/decide", headers={"Origin": ORIGIN}, data={
        "run": summary.run_id, "gate": "g1/training", "action": "edit", "name": "Mo", "csrf": _form(html, "csrf"),
        "param__c0__w": "3.0", "was__c0__w": was["c0"], "param__c1__w": was["c1"], "was__c1__w": was["c1"]})
    assert "edit by human:Mo recorded" in done.text
    from progenitor.oversight.store import DecisionStore

    response = DecisionStore(repo).decision(summary.run_id, "g1/training").response
    assert response["decisions"] == [{"type": "edit", "edited_action": {"name": "train", "args": {"params": {"w": 3.0}}}},
                                     {"type": "approve"}]
