"""The llm: section is checked like every field and never echoes a key; LLM agents without
it are refused before anything runs; the prompts are packaged, shown and rendered strictly;
doctor asks each configured model for one token and says what it costs."""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from progenitor.agents import prompts
from progenitor.agents.prompts import PromptError
from progenitor.checks.doctor import checks
from progenitor.cli import cli
from progenitor.errors import SpecError
from progenitor.task.spec import parse_spec
from progenitor.testing import make_repo, toy_task_files
from tests.helpers.llm_helpers import KEY_VAR, llm_section

SECRET = "sk-live-do-not-print-1234567890"


def _spec(llm: dict):
    return parse_spec({**yaml.safe_load(toy_task_files()["progenitor.yaml"]), "llm": llm})


@pytest.mark.parametrize("llm, message", [
    ({"model": "openai/x", "api_key": SECRET},
     "unknown field 'llm.api_key'; keys are never written in progenitor.yaml: name the environment variable"),
    ({"model": {"model": "openai/x", "api_key_env": SECRET}},
     "field 'llm.model.api_key_env' has bad value (not shown): must be the name of an environment variable"),
    ({"model": 3}, "field 'llm.model' has bad value 3: must be a model name like openai/gpt-4o-mini"),
    ({"model": "openai/x", "retries": -1}, "field 'llm.retries' has bad value -1"),
    ({"model": "openai/x", "prices": {"openai/x": {"input": 1}}}, "required field 'llm.prices.openai/x.output' is missing"),
    ({"model": "openai/x", "coderr": "openai/y"}, "unknown field 'llm.coderr'"),
])
def test_llm_section_errors_are_one_sentence_that_never_echoes_a_key(llm, message):
    with pytest.raises(SpecError) as caught:
        _spec(llm)
    assert message in str(caught.value) and SECRET not in str(caught.value)


def test_each_role_gets_its_model_then_the_fallbacks_with_the_defaults_filled_in():
    spec = _spec({"model": "openai/main", "coder": {"model": "anthropic/c", "api_key_env": "ANTHROPIC_API_KEY"},
                  "api_base": "http://127.0.0.1:9/v1", "api_key_env": "MY_KEY", "fallbacks": ["ollama/small"]})
    coder, fallback = spec.llm.chain("coder")
    assert (coder.model, coder.api_key_env, coder.api_base) == ("anthropic/c", "ANTHROPIC_API_KEY", "http://127.0.0.1:9/v1")
    assert (fallback.model, fallback.api_key_env) == ("ollama/small", "MY_KEY")
    assert [ep.model for ep in spec.llm.chain("architect")] == ["openai/main", "ollama/small"]
    assert [ep.model for ep in spec.llm.models()] == ["openai/main", "ollama/small", "anthropic/c"]


def _run(tmp_path, extra: str):
    files = toy_task_files()
    files["progenitor.yaml"] += extra
    repo = make_repo(tmp_path / "repo", files)
    return repo, CliRunner().invoke(cli, ["run", str(repo), "--executor", "local"])


def test_an_llm_agent_without_an_llm_section_is_refused_before_anything_runs(tmp_path):
    repo, result = _run(tmp_path, "agents: {coder: llm}\n")
    assert result.exit_code == 2
    assert result.output.strip() == ("error: agents: the coder is an LLM agent but progenitor.yaml has no llm: section; "
                                     "add one (llm: {model: openai/gpt-4o-mini}, say)")
    assert not (repo / ".progenitor" / "runs").exists()


def test_a_key_variable_that_is_not_set_is_refused_before_anything_runs(tmp_path, llm_server, monkeypatch):
    monkeypatch.delenv(KEY_VAR, raising=False)
    repo, result = _run(tmp_path, llm_section(llm_server, agents="{reviewers: [llm]}"))
    assert result.exit_code == 2
    assert result.output.strip() == f"error: llm: the key of openai/rev is read from ${KEY_VAR}, which is not set"
    assert not llm_server.requests


def test_prompts_show_prints_a_roles_template_and_an_unknown_role_is_one_sentence():
    for role in prompts.ROLES:
        result = CliRunner().invoke(cli, ["prompts", "show", role])
        assert result.exit_code == 0 and result.output == prompts.source(role)
        assert set(prompts.parts(role)) >= {"system", "repair"}
    result = CliRunner().invoke(cli, ["prompts", "show", "coders"])
    assert result.exit_code == 2
    assert result.output.strip() == "error: no prompt for role 'coders'; did you mean 'coder'? choose one of: architect, coder, reviewer"


def test_a_prompt_is_rendered_strictly():
    with pytest.raises(PromptError, match="prompts/reviewer.yaml, part 'user': 'key' is undefined"):
        prompts.render("reviewer", "user", hypothesis="h", diff="", cut=False, limit=1)
    assert prompts.render("reviewer", "repair", error="bad severity").startswith("Your reply could not be used: bad severity")


@pytest.mark.loop
def test_doctor_asks_each_model_for_one_token_and_says_what_it_costs(tmp_path, llm_server, monkeypatch):
    monkeypatch.setenv(KEY_VAR, "sk-doctor")
    llm_server.respond("arch", lambda request: "OK")
    llm_server.respond("coder", lambda request: "OK")
    files = toy_task_files()
    files["progenitor.yaml"] = files["progenitor.yaml"].replace("candidates: 2}", "candidates: 2, dollars: 2}", 1)
    assert "dollars: 2}" in files["progenitor.yaml"]  # in the toy's one budget mapping (a second is refused)
    files["progenitor.yaml"] += llm_section(llm_server).replace("  reviewer: openai/rev\n", "")
    repo = make_repo(tmp_path / "repo", files)
    found = {c.name: c for c in checks(repo) if c.name.startswith("llm")}
    assert set(found) == {"llm openai/arch", "llm openai/coder", "llm budget"}
    assert found["llm openai/arch"].ok and f"key from ${KEY_VAR}" in found["llm openai/arch"].detail
    assert "$1000 / $1000 per M tokens in/out (llm.prices)" in found["llm openai/coder"].detail
    assert found["llm budget"].detail == "budget.dollars 2: no LLM call starts once it is spent"
    assert [r.body["max_tokens"] for r in llm_server.probes] == [1, 1] and not llm_server.requests
    offline = make_repo(tmp_path / "offline", toy_task_files())
    (line,) = [c for c in checks(offline) if c.name.startswith("llm")]
    assert line.ok and line.detail.startswith("none configured") and len(llm_server.probes) == 2


def test_init_templates_a_research_brief_that_the_spec_names_and_protects(tmp_path):
    result = CliRunner().invoke(cli, ["init", str(tmp_path)])
    assert result.exit_code == 0, result.output
    from progenitor.task.spec import load_spec

    spec = load_spec(tmp_path)
    assert spec.agents.brief == "program.md" and "program.md" in spec.protected_paths
    assert (tmp_path / "program.md").read_text().startswith("# Research brief")
    assert spec.llm is None and spec.agents.architect == "search", "the template runs offline"
