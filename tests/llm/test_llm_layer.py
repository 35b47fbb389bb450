"""The LLM layer against a real OpenAI-compatible HTTP server on 127.0.0.1, through real
litellm: repairs of malformed replies, litellm's retries, timeouts and fallbacks, what a
call costs, the run's call cache, the budget and the keys."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from progenitor.errors import LlmBudgetSpent, LlmUnavailable, ModelBehaviorError
from progenitor.llm import CallLog, LlmSession
from progenitor.llm.replies import parse_json
from progenitor.task.spec import Llm
from progenitor.testing.llm_server import Reply

KEY = "sk-progenitor-test-7f3a9c1e5b"


class Answer(BaseModel):
    answer: int


def _session(server, tmp_path=None, account=None, **settings) -> LlmSession:
    config = Llm.model_validate({"model": "openai/main", "api_base": server.url, "api_key_env": "TEST_LLM_KEY",
                                 "retries": 1, **settings})
    return LlmSession(config, cache_dir=tmp_path / "llm" if tmp_path else None, account=account)


def _ask(session: LlmSession, k=0, tries=None):
    return session.ask("coder", 1, k, [{"role": "user", "content": "Reply in JSON: {\"answer\": <int>}"}],
                       lambda text: parse_json(text, Answer), repair=lambda error: f"Fix this: {error}",
                       tries=tries, schema=Answer)


@pytest.fixture(autouse=True)
def key(monkeypatch):
    monkeypatch.setenv("TEST_LLM_KEY", KEY)


def test_malformed_json_goes_back_with_its_error_then_the_repair_is_used(llm_server):
    llm_server.queue("main", '{"answer": 4', '{"answer": "four"}', '```json\n{"answer": 4}\n```')
    session = _session(llm_server)
    assert _ask(session).answer == 4
    first, second, third = llm_server.requests_for("main")
    assert "not valid JSON" in second.messages[-1]["content"] and second.messages[-2]["content"] == '{"answer": 4'
    assert "answer: Input should be a valid integer" in third.messages[-1]["content"]
    assert first.body["response_format"] == {"type": "json_object"}
    assert first.headers["authorization"] == f"Bearer {KEY}", "the key comes from the variable the spec names"
    assert [c.id for c in session.account.calls] == ["g1/c0/coder/0", "g1/c0/coder/1", "g1/c0/coder/2"]


def test_repairs_are_bounded_then_the_agent_misbehaved(llm_server):
    llm_server.respond("main", lambda request: "no JSON here")
    with pytest.raises(ModelBehaviorError, match="no usable reply in 3 requests: the reply is not valid JSON"):
        _ask(_session(llm_server, repairs=2))
    assert len(llm_server.requests_for("main")) == 3


def test_a_429_is_resent_after_its_retry_after_and_both_requests_are_on_record(llm_server):
    llm_server.queue("main", Reply(status=429, content="slow down"), '{"answer": 1}')
    session = _session(llm_server)
    assert _ask(session).answer == 1
    assert len(llm_server.requests_for("main")) == 2 and not llm_server.unexpected
    limited, answered = session.account.calls
    assert (limited.outcome, limited.status, limited.fault, limited.dollars) == ("error", 429, "transient", 0.0)
    assert limited.retry_after == 0 and limited.error == "slow down"
    assert answered.outcome == "ok" and answered.model == "openai/main" and answered.id == "g1/c0/coder/1"


def test_a_timeout_falls_back_to_the_next_model(llm_server):
    llm_server.queue("main", Reply(content='{"answer": 1}', delay=3))
    llm_server.queue("backup", '{"answer": 2}')
    session = _session(llm_server, timeout=1, retries=0, fallbacks=["openai/backup"])
    assert _ask(session).answer == 2
    assert [r.model for r in llm_server.requests] == ["main", "backup"]
    aborted, call = session.account.calls
    assert aborted.outcome == "aborted" and aborted.estimated and aborted.completion_tokens == 4096
    assert call.model == "openai/backup", "the call is the fallback's, and priced as the fallback"


def test_no_model_answering_is_llm_unavailable_and_names_no_key(llm_server, monkeypatch, tmp_path):
    llm_server.respond("main", lambda request: Reply(status=503, content=f"down; your key was {KEY}"))
    with pytest.raises(LlmUnavailable, match="no model answered") as caught:
        _ask(_session(llm_server, retries=0))
    assert KEY not in str(caught.value) and "[key hidden]" in str(caught.value)
    monkeypatch.delenv("TEST_LLM_KEY")
    with pytest.raises(LlmUnavailable, match="TEST_LLM_KEY .* is not set"):
        _ask(_session(llm_server, tmp_path))
    assert not list((tmp_path / "llm").rglob("*.json")), "a request that never left is not on record, nor charged"


def test_a_call_costs_its_tokens_at_the_given_price_and_an_unknown_model_nothing(llm_server):
    llm_server.queue("main", Reply(content='{"answer": 1}', prompt_tokens=1000, completion_tokens=200))
    priced = _session(llm_server, prices={"openai/main": {"input": 3.0, "output": 15.0}})
    _ask(priced)
    (call,) = priced.account.calls
    assert call.priced and call.dollars == pytest.approx(1000 * 3e-6 + 200 * 15e-6)
    assert (call.prompt_tokens, call.completion_tokens) == (1000, 200)
    llm_server.queue("main", '{"answer": 1}')
    unpriced = _session(llm_server)
    _ask(unpriced)
    (call,) = unpriced.account.calls
    assert not call.priced and call.dollars == 0.0


def test_a_finished_call_is_replayed_from_the_run_not_paid_again(llm_server, tmp_path):
    llm_server.queue("main", '{"answer": 7}')
    prices = {"openai/main": {"input": 1.0, "output": 1.0}}
    first = _session(llm_server, tmp_path, prices=prices)
    assert _ask(first).answer == 7
    again = _session(llm_server, tmp_path, prices=prices)  # a resumed run: a new session, the same files
    assert _ask(again).answer == 7
    assert len(llm_server.requests) == 1
    (paid,), (replayed,) = first.account.calls, again.account.calls
    assert replayed.cached and replayed.id == paid.id and replayed.dollars == paid.dollars
    stored = (tmp_path / "llm" / "g1" / "c0" / "coder" / "0.json").read_text()
    assert json.loads(stored)["text"] == '{"answer": 7}' and json.loads(stored)["state"] == "done" and KEY not in stored
    llm_server.queue("main", '{"answer": 8}')
    assert _ask(again, k=1).answer == 8, "another candidate's call is its own"


def test_the_account_refuses_a_paid_call_once_the_budget_is_spent(llm_server, tmp_path):
    llm_server.respond("main", lambda request: Reply(content='{"answer": 1}', prompt_tokens=1000, completion_tokens=0))
    session = _session(llm_server, tmp_path, account=CallLog(dollars=0.002),
                       prices={"openai/main": {"input": 1.0, "output": 0}})
    _ask(session, k=0)
    _ask(session, k=1)
    with pytest.raises(LlmBudgetSpent, match="0.002 of 0.002"):
        _ask(session, k=2)
    assert len(llm_server.requests) == 2


# -- against the independent server (tests/helpers/independent_llm.py) ------------------------
@pytest.fixture
def independent():
    from tests.helpers.independent_llm import IndependentLLM

    with IndependentLLM(prices={"main": (1.0, 1.0)}) as server:
        yield server


def _independent_session(server, **settings) -> LlmSession:
    config = Llm.model_validate({"model": "openai/main", "api_base": server.url, "api_key_env": "TEST_LLM_KEY",
                                 "retries": 1, "repairs": 1, **settings})
    return LlmSession(config)


def test_a_provider_that_refuses_the_schema_is_asked_with_weaker_formats_then_the_prompt_alone(independent):
    from tests.helpers.independent_llm import error, reply

    refuse = "Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model."
    independent.script("main", error(400, refuse), error(400, "response_format json_object is not supported"),
                       reply('{"answer": 5}'))
    session = _independent_session(independent, json_mode="schema")
    assert _ask(session).answer == 5
    formats = [s.body.get("response_format", {}).get("type") for s in independent.seen]
    assert formats == ["json_schema", "json_object", None]
    assert [c.fault for c in session.account.calls] == ["format", "format", None]
    independent.script("main", reply('{"answer": 6}'))
    assert _ask(session, k=1).answer == 6 and "response_format" not in independent.seen[-1].body, "remembered"


def test_a_400_is_sent_once_and_a_reply_always_cut_fails_clearly(independent):
    from tests.helpers.independent_llm import error, reply

    independent.script("main", error(400, "This model's maximum context length is 8192 tokens",
                                     code="context_length_exceeded"))
    with pytest.raises(ModelBehaviorError, match=r"refused the request \(400\), which is not sent again: the prompt "
                                                 r"is longer than its context window"):
        _ask(_independent_session(independent, retries=2, repairs=2))
    assert len(independent.seen) == 1
    independent.script("main", reply('{"answer": ', finish="length"), reply('12', finish="length"))
    with pytest.raises(ModelBehaviorError, match=r"reply was cut at llm.max_tokens \(4096 tokens\) 2 time\(s\), in 2 "
                                                 r"requests; raise llm.max_tokens"):
        _ask(_independent_session(independent))
    assert len(independent.seen) == 3, "1 + repairs: a continuation spends a repair"


def test_a_provider_asking_for_a_longer_wait_than_max_wait_is_not_waited_for(independent):
    from tests.helpers.independent_llm import error

    independent.script("main", error(429, "come back in an hour", retry_after=3600))
    with pytest.raises(LlmUnavailable, match="asked to wait 3600 s; come back in an hour"):
        _ask(_independent_session(independent, retries=3))
    assert len(independent.seen) == 1
