"""progenitor inside a lab's own tooling: events streamed from a run, and the compiled loop
embedded as a subgraph of the lab's own LangGraph graph."""

from __future__ import annotations

from typing import Optional

import pytest

import progenitor
from progenitor.compute import register_executor
from progenitor.options import RunOptions
from progenitor.testing import FakeExecutor, make_repo, toy_task_files
from progenitor.workflows.runner import open_run
from progenitor.workflows.state import RunState
from tests.helpers.records import lineage_json

FAST = RunOptions(executor="fake", sandbox="process")


@pytest.fixture(autouse=True)
def fake_executor():
    register_executor("fake", FakeExecutor)


@pytest.mark.loop
def test_stream_run_yields_the_run_as_it_happens_and_ends_with_its_summary(tmp_path):
    repo = make_repo(tmp_path / "repo", toy_task_files(generations=2, candidates=2))
    events = list(progenitor.stream_run(repo, FAST))
    kinds = [e.type for e in events]
    assert kinds[0] == "run.start" and kinds[-1] == "run.end"
    assert kinds.count("generation.end") == 2 and kinds.count("score") == 4
    end = events[-1]
    assert end.status == "finished" and end.tried == 4 and end.champion < end.baseline
    times = [e.t for e in events]
    assert times == sorted(times)


def test_stream_run_ends_with_the_error_when_the_run_cannot_start(tmp_path):
    events = list(progenitor.stream_run(tmp_path, FAST))
    assert [e.type for e in events] == ["run.error"]
    assert "not the root of a git repository" in events[0].error and events[0].error_type == "UserError"


class LabState(RunState, total=False):
    """The lab's graph: progenitor's state plus its own keys."""

    ticket: str
    report: Optional[str]


@pytest.mark.loop
def test_the_loop_embeds_as_a_subgraph_of_a_lab_graph(tmp_path):
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.graph import END, START, StateGraph

    repo = make_repo(tmp_path / "repo", toy_task_files(generations=1, candidates=2))
    with open_run(repo, FAST) as (ctx, graph_input):
        loop = progenitor.build_graph(ctx)
        lab = StateGraph(LabState)
        lab.add_node("ticket", lambda s: {"ticket": "LAB-7"})
        lab.add_node("progenitor", loop)
        lab.add_node("report", lambda s: {"report": f"{s['ticket']}: champion {s['champion']['sha'][:10]} "
                                                    f"after {len(s['history'])} generation(s)"})
        lab.add_edge(START, "ticket")
        lab.add_edge("ticket", "progenitor")
        lab.add_edge("progenitor", "report")
        lab.add_edge("report", END)
        graph = lab.compile(checkpointer=InMemorySaver())
        final = graph.invoke(graph_input, {"configurable": {"thread_id": "lab-1"}, "recursion_limit": 50})
    assert final["ticket"] == "LAB-7" and final["report"].startswith("LAB-7: champion ")
    assert final["history"][0]["gen"] == 1 and len(final["candidates"]) == 2
    lineage = lineage_json(ctx.run.run_id, repo=repo)
    assert {c["status"] for c in lineage["candidates"]} == {"scored"}
    assert lineage["champion"] == final["champion"]["sha"]


@pytest.mark.loop
def test_a_langgraph_client_answers_the_human_gate_with_langchains_hitl_shape(tmp_path):
    """No progenitor surface in between: the lab's own code reads the interrupt and resumes it."""
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.types import Command

    from progenitor.oversight.audit import audit_log

    files = toy_task_files(generations=1, candidates=2, oversight="mode: approver")
    repo = make_repo(tmp_path / "repo", files)
    with open_run(repo, FAST) as (ctx, graph_input):
        graph = progenitor.build_graph(ctx, InMemorySaver())
        config = {"configurable": {"thread_id": ctx.run.run_id}}
        chunks = list(graph.stream(graph_input, config, stream_mode="updates"))
        [interrupt] = chunks[-1]["__interrupt__"]
        request = interrupt.value
        [action] = request["action_requests"]
        assert action["name"] == "promote" and action["description"].startswith("Promote g1/c")
        assert request["review_configs"][0]["allowed_decisions"] == ["approve", "edit", "reject", "respond"]
        list(graph.stream(Command(resume={"decisions": [{"type": "approve"}]}), config, stream_mode="updates"))
        state = graph.get_state(config)
    assert not state.next and state.values["champion"]["sha"] == action["args"]["commit"]
    [entry] = [e for e in audit_log(repo).entries() if e["action"] == "approve"]
    assert entry["actor"] == "human:langgraph-client" and entry["surface"] == "langgraph"
