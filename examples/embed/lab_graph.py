"""progenitor's loop inside a lab's own LangGraph graph: a node picks the task, progenitor
improves it, a node writes the report.

    python examples/embed/lab_graph.py [--workdir DIR]

The lab's graph has its own state and its own checkpointer (SQLite here). The ``improve`` node
opens a progenitor run on the task the first node picked and invokes progenitor's compiled
graph inside it: with no checkpointer of its own, the loop keeps its checkpoints in the lab's,
under its own namespace, and a human gate inside it would surface as the lab graph's interrupt.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Optional, TypedDict

import progenitor


class LabState(TypedDict, total=False):
    workdir: str
    task: str
    """The bundled example the lab improves today."""
    repo: str
    run_id: str
    baseline: Optional[float]
    champion: Optional[float]
    report: str


def pick_task(state: LabState) -> dict:
    """The lab's own logic would look at its backlog; here: the first bundled example, as a fresh repo."""
    from progenitor.lineage.scaffold import available_examples, init_example

    task = "digits" if "digits" in available_examples() else available_examples()[0]
    repo = init_example(task, Path(state["workdir"]) / task)
    return {"task": task, "repo": str(repo)}


def improve(state: LabState, config) -> dict:
    """One progenitor run on the picked task, its loop invoked as a subgraph of this node."""
    options = progenitor.RunOptions(generations=1, candidates=2, executor="local")
    with progenitor.ModelRepo(state["repo"]).embed(options) as (run, loop, first):
        final = loop.invoke(first, config)
    metric = progenitor.load_spec(state["repo"]).objective.metric
    return {"run_id": run.id, "baseline": final["baseline"]["metrics"][metric],
            "champion": final["champion"]["metrics"][metric]}


def report(state: LabState) -> dict:
    """The lab's report: every candidate of the run, from its lineage in git."""
    run = progenitor.ModelRepo(state["repo"]).run(state["run_id"])
    lines = [f"# {state['task']}: run {run.id}", "",
             f"baseline {state['baseline']:.4f} -> champion {state['champion']:.4f}", "",
             "| candidate | status | value | decision |", "|---|---|---|---|"]
    for c in run.lineage().candidates:
        value = "-" if c.value is None else f"{c.value:.4f}"
        lines.append(f"| g{c.gen}/c{c.k} | {c.status} | {value} | {c.decision.verdict if c.decision else ''} |")
    text = "\n".join(lines) + "\n"
    (Path(state["workdir"]) / "REPORT.md").write_text(text)
    return {"report": text}


def build_lab(checkpointer):
    from langgraph.graph import END, START, StateGraph

    lab = StateGraph(LabState)
    lab.add_node("pick_task", pick_task)
    lab.add_node("improve", improve)
    lab.add_node("report", report)
    lab.add_edge(START, "pick_task")
    lab.add_edge("pick_task", "improve")
    lab.add_edge("improve", "report")
    lab.add_edge("report", END)
    return lab.compile(checkpointer=checkpointer)


def main() -> int:
    from langgraph.checkpoint.sqlite import SqliteSaver

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", help="where the task's repo and the report go (default: a new temp dir)")
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="progenitor-lab-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    with SqliteSaver.from_conn_string(str(workdir / "lab-checkpoints.sqlite")) as saver:
        lab = build_lab(saver)
        final = lab.invoke({"workdir": str(workdir)}, {"configurable": {"thread_id": "lab-1"}, "recursion_limit": 100})
    print(final["report"], end="")
    print(f"report: {workdir / 'REPORT.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
