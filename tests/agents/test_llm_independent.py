"""The LLM agents driven, through the CLI, by an independent scripted OpenAI-compatible server
(``tests/helpers/independent_llm.py``: not the project's own, no code shared with it), as a user
with their own model would see them: a code change promoted through transient failures and
repairs, each failure costing at most the configured retries plus repairs, every failure that
ends a generation printed with its full reason, a stalled run ending with exit code 3, a
``kill -9`` in mid-call resumed with the ledger equal to what the server billed, a missing key
refused before any data is prepared."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import git
import pytest
from click.testing import CliRunner

from progenitor.cli import cli
from progenitor.run.ledger import Ledger
from progenitor.run.rundir import RunDir
from progenitor.testing import make_repo, toy_task_files
from tests.helpers.independent_llm import IndependentLLM, error, hang, reply
from tests.helpers.records import lineage_json, status_json

KEY = "INDEPENDENT_LLM_KEY"
PRICES = {"arch": (200.0, 800.0), "coder": (300.0, 1500.0), "rev": (100.0, 400.0)}
"""Dollars per million tokens: cents per call, so that a cent's difference would show."""
NO_FINDINGS = json.dumps({"findings": []})
CLI = ["--executor", "local", "--sandbox", "process"]


@pytest.fixture(autouse=True)
def key(monkeypatch):
    monkeypatch.setenv(KEY, "sk-independent-0000")


@pytest.fixture
def server():
    with IndependentLLM(prices=PRICES) as srv:
        for model in PRICES:  # the preflight's one-token question; anything else unscripted is a 500
            srv.otherwise(model, lambda seen: reply("OK") if "Reply with the word OK" in seen.text
                          else error(500, f"unscripted request to {seen.model}"))
        yield srv


def _spec(server, generations=1, candidates=2, **llm) -> str:
    settings = {"retries": 1, "repairs": 1, "edit_attempts": 2, "timeout": 2, "max_tokens": 512,
                "json_mode": "schema", "parallel": 2, **llm}
    prices = ", ".join(f"openai/{m}: {{input: {i}, output: {o}}}" for m, (i, o) in PRICES.items())
    return (f"agents: {{architect: llm, coder: llm, reviewers: [llm]}}\n"
            f"llm:\n  architect: openai/arch\n  coder: openai/coder\n  reviewer: openai/rev\n"
            f"  api_base: {server.url}\n  api_key_env: {KEY}\n"
            + "".join(f"  {k}: {v}\n" for k, v in settings.items()) + f"  prices: {{{prices}}}\n"
            f"oversight: {{perfect: null, max_relative_gain: null}}\nbudget: {{generations: {generations}, candidates: {candidates}}}\n")


def _repo(tmp_path, server, name="repo", **kw):
    files = toy_task_files()
    files["progenitor.yaml"] = files["progenitor.yaml"].split("budget:")[0] + "sandbox: {backend: process}\n" + _spec(server, **kw)
    return make_repo(tmp_path / name, files)


def _proposals(*plans: tuple[str, str]) -> str:
    return json.dumps({"proposals": [{"hypothesis": h, "plan": p, "expected_effect": "lower error", "risk": "none",
                                      "params": {}} for h, p in plans]})


def _edit(path: str, search: str, replace: str) -> str:
    return f"{path}\n<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n"


def _run_id(repo) -> str:
    (run,) = [p.name for p in (repo / ".progenitor" / "runs").iterdir()]
    return run


def _ledger(repo, run_id) -> Ledger:
    return Ledger(RunDir(repo, run_id).ledger)


# The coder quotes train.py's lines indented by four spaces, as if they sat in a function.
OFF_BY_INDENT = _edit("train.py", '    config = yaml.safe_load(open("config.yaml"))\n    w = float(config["w"])',
                      '    config = yaml.safe_load(open("config.yaml"))\n'
                      '    w = 3.0 * float(config["w"])  # the labels\' slope is three times the configured weight')
PROPOSALS = _proposals(("the labels' slope is three times w", "train.py: multiply the configured w by 3"),
                       ("a larger w fits better", "config.yaml: set w to 2.0"))


@pytest.mark.loop
def test_a_code_change_is_promoted_through_429s_cut_replies_bad_edits_bad_reviews_and_timeouts(tmp_path, server):
    half = len(PROPOSALS) // 2
    server.script("arch", error(429, "Rate limit reached", retry_after=1), reply(PROPOSALS[:half], finish="length"),
                  reply(PROPOSALS[half:]), about="Propose")
    server.script("coder", reply(OFF_BY_INDENT, delay=1.0), about="(g1/c0)")
    server.script("coder", reply(_edit("prepare.py", "import", "import os"), delay=1.0),
                  reply(_edit("config.yaml", "w: 1.0", "w: 2.0")), about="(g1/c1)")
    server.script("rev", reply(json.dumps({"findings": [{"severity": "extreme", "message": "looks odd"}]})),
                  reply(NO_FINDINGS), about="candidate g1/c0")
    server.script("rev", hang(), reply(NO_FINDINGS), about="candidate g1/c1")
    repo = _repo(tmp_path, server)
    result = CliRunner().invoke(cli, ["run", str(repo), *CLI])
    assert result.exit_code == 0, result.output
    run_id = _run_id(repo)
    cands = {c["k"]: c for c in lineage_json(run_id, repo=repo)["candidates"]}
    assert cands[0]["decision"]["verdict"] == "promoted" and cands[1]["status"] == "scored", result.output
    assert "w = 3.0 * float(config[\"w\"])" in git.Repo(repo).git.show(f"{cands[0]['sha']}:train.py")

    # Requests per call: at most 1 + retries (1) + repairs (1); the coder's: edit_attempts (2).
    arch = server.requests("arch", "Propose")
    assert [s.kind for s in arch] == ["error", "reply", "reply"]
    assert arch[1].at - arch[0].at >= 1.0, "Retry-After: 1 was honoured"
    assert arch[0].body["response_format"]["type"] == "json_schema", "structured output where the provider has it"
    assert arch[2].body["messages"][-2] == {"role": "assistant", "content": PROPOSALS[:half]}
    assert arch[2].body["messages"][-1]["content"].startswith("Your reply was cut off at the length limit")
    assert "response_format" not in arch[2].body, "a continuation is not a whole JSON object"
    assert not any("not valid JSON" in s.text for s in server.seen), "a cut reply is continued, never 'repaired'"
    c0, c1 = server.requests("coder", "(g1/c0)"), server.requests("coder", "(g1/c1)")
    assert len(c0) == 1 and len(c1) == 2 and "prepare.py is protected" in c1[1].body["messages"][-1]["content"]
    assert abs(c1[0].at - c0[0].at) < 0.9, "the coder calls of a generation run at once (llm.parallel: 2)"
    assert c0[0].text.index("## config.yaml") < c0[0].text.index("# The proposal"), "shared files first, then the proposal"
    r0, r1 = server.requests("rev", "candidate g1/c0"), server.requests("rev", "candidate g1/c1")
    assert len(r0) == 2 and "findings.0.severity" in r0[1].body["messages"][-1]["content"]
    assert r0[1].body["messages"][-2]["role"] == "assistant", "the repair continues the conversation"
    assert [s.kind for s in r1] == ["aborted", "reply"]

    # The ledger holds every request the server billed, the aborted one at the same estimate.
    ledger = _ledger(repo, run_id)
    assert ledger.totals().dollars == pytest.approx(server.billed, abs=1e-9)
    assert len(ledger.data.llm_calls) == len(server.seen)
    (aborted,) = [c for c in ledger.data.llm_calls.values() if c.estimated]
    assert aborted.outcome == "aborted" and aborted.dollars == pytest.approx(r1[0].billed, abs=1e-12)
    assert cands[0]["cost"]["llm_calls"] == 1 + 2 and cands[1]["cost"]["llm_calls"] == 2 + 2, "requests, not replies"
    assert "of it estimated: aborted requests" in " ".join(result.output.replace("│", " ").split())
    assert "g1/c1 reviewer: openai/rev aborted: no answer within 2 s" in result.output
    assert "architect: openai/arch error 429: Rate limit reached" in result.output


@pytest.mark.loop
def test_failures_that_end_generations_are_printed_in_full_and_a_stalled_run_exits_3(tmp_path, server):
    server.script("arch", error(500, "The server had an error while processing your request"),
                  reply('{"proposals": [{"hypothesis": "h", "plan": "p"'),
                  reply('{"proposals": [{"hypothesis": "deeper"}]}'), about="for generation 1,")
    server.script("arch", reply(_proposals(("w = 2", "config.yaml: set w to 2.0"))), about="for generation 2,")
    server.script("coder", error(400, "This model's maximum context length is 8192 tokens. However, your messages "
                                      "resulted in 9000 tokens.", code="context_length_exceeded"), about="(g2/c0)")
    repo = _repo(tmp_path, server, generations=3, candidates=1)
    result = CliRunner().invoke(cli, ["run", str(repo), *CLI])
    assert result.exit_code == 3, result.output
    assert [s.kind for s in server.requests("arch", "for generation 1,")] == ["error", "reply", "reply"]
    assert len(server.requests("coder", "(g2/c0)")) == 1, "a 400 is never sent again"
    out = " ".join(result.output.split())
    assert ("g1 architect failed, no candidate this generation: the architect could not propose: the architect "
            "model gave no usable reply in 3 requests: the JSON does not match the schema: - proposals.0.plan: "
            "Field required") in out, result.output
    assert ("g2/c0 coder failed: the coder could not apply the proposal: openai/coder refused the request (400), "
            "which is not sent again: the prompt is longer than its context window: This model's maximum context "
            "length is 8192 tokens") in out, result.output
    assert "no candidate was trained in 2 consecutive generations (g1: the architect could not propose" in out
    assert "stalled: no candidate was trained in 2 consecutive generations" in out
    status = status_json(_run_id(repo), repo=repo)
    assert status["status"] == "stalled" and status["summary"]["generations"] == 2
    assert status["ledger"]["dollars"] == pytest.approx(server.billed, abs=1e-9)


@pytest.mark.loop
def test_a_model_that_keeps_failing_costs_one_request_plus_its_retries_and_stops_the_run(tmp_path, server):
    server.script("arch", error(503, "overloaded"), error(503, "overloaded"), about="Propose")
    repo = _repo(tmp_path, server)
    result = CliRunner().invoke(cli, ["run", str(repo), *CLI])
    assert result.exit_code == 3, result.output
    assert len(server.requests("arch", "Propose")) == 2, "1 + llm.retries"
    assert "error: no model answered (openai/arch; 1 retries): overloaded" in result.output
    status = json.loads(CliRunner().invoke(cli, ["status", _run_id(repo), "--repo", str(repo), "--json"]).output)
    assert status["ledger"]["dollars"] == pytest.approx(server.billed, abs=1e-9) and status["ledger"]["llm"]


@pytest.mark.loop
def test_kill_9_in_mid_call_then_resume_leaves_the_ledger_equal_to_the_servers_bill(tmp_path, server):
    server.script("arch", reply(PROPOSALS), about="Propose")
    server.script("coder", reply(OFF_BY_INDENT), about="(g1/c0)")
    server.script("coder", hang(), about="(g1/c1)")
    repo = _repo(tmp_path, server, parallel=1, timeout=60)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.Popen([sys.executable, "-m", "progenitor.cli", "run", str(repo), *CLI], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        server.wait_for(lambda seen: any(s.model == "coder" and "(g1/c1)" in s.text for s in seen))
        time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    server.wait_for(lambda seen: any(s.kind == "aborted" for s in seen), timeout=30)
    run_id = _run_id(repo)
    interrupted = json.loads(CliRunner().invoke(cli, ["status", run_id, "--repo", str(repo), "--json"]).output)
    assert interrupted["status"] == "interrupted" and interrupted["ledger"] is not None, "an interrupted run shows its ledger"
    # The first coder call was charged the moment it ended, though its node had not; the one under way was not.
    at_kill = _ledger(repo, run_id).data.llm_calls
    assert any("/g1/c0/coder/0" in cid for cid in at_kill) and not any("/c1/coder/" in cid for cid in at_kill)

    server.script("coder", reply(_edit("config.yaml", "w: 1.0", "w: 2.0")), about="(g1/c1)")
    server.otherwise("rev", lambda seen: reply("OK") if "Reply with the word OK" in seen.text else reply(NO_FINDINGS))
    result = CliRunner().invoke(cli, ["resume", run_id, "--repo", str(repo)])
    assert result.exit_code == 0, result.output
    ledger = _ledger(repo, run_id)
    assert ledger.totals().dollars == pytest.approx(server.billed, abs=1e-9), (ledger.totals().dollars, server.billed)
    assert len(ledger.data.llm_calls) == len(server.seen), "every request the server received, charged once"
    killed = [c for c in ledger.data.llm_calls.values() if c.outcome == "killed"]
    assert len(killed) == 1 and killed[0].estimated and killed[0].candidate.endswith("/g1/c1")
    assert "left under way by the process that died: counted at an estimate" in result.output
    cands = {c["k"]: c for c in lineage_json(run_id, repo=repo)["candidates"]}
    assert cands[0]["decision"]["verdict"] == "promoted" and cands[1]["status"] == "scored"


def test_a_run_with_no_key_stops_before_preparing_data_with_one_sentence_naming_the_variable(tmp_path, server,
                                                                                                monkeypatch):
    monkeypatch.delenv(KEY)
    repo = _repo(tmp_path, server)
    result = CliRunner().invoke(cli, ["run", str(repo), *CLI])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: llm: the key of openai/arch is read from ${KEY}, which is not set"
    assert not (repo / ".progenitor" / "runs").exists() and not server.seen
    spec = repo / "progenitor.yaml"  # no api_key_env: the provider's own variable, as litellm reads it
    spec.write_text(spec.read_text().replace(f"  api_key_env: {KEY}\n", ""))
    git.Repo(repo).git.commit("-qam", "no key variable named")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    result = CliRunner().invoke(cli, ["run", str(repo), *CLI])
    assert result.exit_code == 2
    assert result.output.strip() == "error: llm: the key of openai/arch is read from $OPENAI_API_KEY, which is not set"


@pytest.mark.loop
def test_a_model_that_does_not_answer_the_preflight_starts_nothing_and_doctor_says_so(tmp_path, server):
    from progenitor.checks.doctor import llm_checks, models_failed

    server.otherwise("coder", lambda seen: error(404, "The model `coder` does not exist"))
    repo = _repo(tmp_path, server)
    result = CliRunner().invoke(cli, ["run", str(repo), *CLI])
    assert result.exit_code == 3, result.output
    assert ("error: llm: openai/coder did not answer (404): no such model or endpoint: The model `coder` does not "
            f"exist (key from ${KEY}); nothing was started") in result.output
    assert not (repo / ".progenitor" / "runs").exists()
    assert len(server.requests("coder")) == 1 and all(s.body["max_tokens"] == 1 for s in server.seen)
    failed = models_failed(llm_checks(repo))
    assert [c.name for c in failed] == ["llm openai/coder"]
    server.script("arch", reply(PROPOSALS), about="Propose")
    before = len(server.seen)
    skipped = CliRunner().invoke(cli, ["run", str(repo), *CLI, "--no-preflight"])
    assert skipped.exit_code == 3 and "did not answer" not in skipped.output, skipped.output
    assert all(s.body["max_tokens"] != 1 for s in server.seen[before:]), "no probe: the coder's first call meets the 404"
    assert "openai/coder: no such model or endpoint" in skipped.output


def test_a_resume_whose_preflight_fails_charges_the_probes_it_sent(tmp_path, server):
    """The run exists: the probes a failed preflight sent are in its ledger (a provider bills them)."""
    server.otherwise("coder", lambda seen: reply("OK") if "Reply with the word OK" in seen.text
                     else error(404, "The model `coder` does not exist"))
    server.script("arch", reply(PROPOSALS), about="Propose")
    repo = _repo(tmp_path, server)
    first = CliRunner().invoke(cli, ["run", str(repo), *CLI])
    assert first.exit_code == 3 and "openai/coder: no such model or endpoint" in first.output, first.output
    run_id = _run_id(repo)
    server.otherwise("coder", lambda seen: error(404, "The model `coder` does not exist"))
    before = len(server.seen)
    resumed = CliRunner().invoke(cli, ["resume", run_id, "--repo", str(repo)])
    assert resumed.exit_code == 3 and "openai/coder did not answer (404)" in resumed.output, resumed.output
    sent = server.seen[before:]
    assert len(sent) == 3 and all(s.body["max_tokens"] == 1 for s in sent), "one probe per model, nothing else"
    ledger = _ledger(repo, run_id)
    charged = [cid for cid in ledger.data.llm_calls if "/preflight/s1/" in cid]
    assert len(charged) == 3, list(ledger.data.llm_calls)
    assert ledger.totals().dollars == pytest.approx(server.billed, abs=1e-9)


@pytest.mark.slow  # doctor probes every sandbox too (tens of seconds)
def test_doctor_exits_non_zero_when_a_model_it_was_asked_about_does_not_answer(tmp_path, server):
    server.otherwise("rev", lambda seen: error(503, "down for maintenance"))
    repo = _repo(tmp_path, server)
    result = CliRunner().invoke(cli, ["doctor", str(repo)])
    assert result.exit_code == 1, result.output
    assert "error: 1 model(s) of the llm: section did not answer: openai/rev" in result.output
