"""The loop as a LangGraph ``StateGraph``.

```
 START → prepare → architect → coder → safety_review ─┬─(none survived)───→ promote
                       ↑                              └→ trainer ─┬→ scorer → select → oversight → promote
                       │                  fixer ←─(a crash to fix)┘
                       │                    └→ safety_review → trainer → scorer ...
                       └──────────────── promote ──(budget spent / target met / stop)→ END
```

A generation whose candidates were all rejected goes straight to ``promote``, which
records it and starts the next one (or ends): the rejected candidates are kept, and the
generation counts against the budget, so a stubborn architect cannot loop forever. A
candidate that crashed in training gets one fix attempt from the coder, as a new candidate
of the same generation (``fixing``); a fix is never fixed again, so that detour is taken at
most once per generation. After every node, the LLM calls its agents made are charged to
the ledger (``llm_usage.charge``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from progenitor.errors import RunStopped
from progenitor.workflows import decide, fixing, nodes
from progenitor.workflows.llm_usage import charge
from progenitor.workflows.state import RunContext, RunState

NODES_PER_GENERATION = 11
"""architect, coder, safety_review, trainer, fixer, safety_review, trainer, scorer, select, oversight, promote."""


def recursion_limit(generations: int) -> int:
    """Enough steps for every generation plus prepare, and no more: a runaway loop stops."""
    return NODES_PER_GENERATION * generations + 10


def build_graph(ctx: RunContext, checkpointer: Any = None):
    """The compiled graph for one run; embed it as a subgraph or invoke it directly."""
    from langgraph.graph import END, START, StateGraph

    graph = StateGraph(RunState)
    steps = {
        "prepare": nodes.prepare,
        "architect": nodes.architect,
        "coder": nodes.coder,
        "safety_review": nodes.safety_review,
        "trainer": nodes.trainer,
        "fixer": fixing.fixer,
        "scorer": nodes.scorer,
        "select": decide.select,
        "oversight": decide.oversight,
        "promote": decide.promote,
    }
    for name, fn in steps.items():
        graph.add_node(name, partial(_run_node, name, fn, ctx))
    graph.add_edge(START, "prepare")
    graph.add_edge("prepare", "architect")
    graph.add_edge("architect", "coder")
    graph.add_edge("coder", "safety_review")
    graph.add_conditional_edges("safety_review", nodes.after_review,
                                {"trainer": "trainer", "scorer": "scorer", "promote": "promote"})
    graph.add_conditional_edges("trainer", fixing.after_training, {"fixer": "fixer", "scorer": "scorer"})
    graph.add_edge("fixer", "safety_review")
    graph.add_edge("scorer", "select")
    graph.add_edge("select", "oversight")
    graph.add_edge("oversight", "promote")
    graph.add_conditional_edges("promote", decide.after_promote, {"architect": "architect", "end": END})
    return graph.compile(checkpointer=checkpointer)


def _run_node(name: str, fn, ctx: RunContext, state: RunState) -> dict:
    stop = ctx.run.stop_requested()
    if stop:
        # Raised before the node's work: the checkpoint stays at the node before, so a
        # resume redoes this node, which looks up whatever had already finished.
        raise RunStopped(stop)
    ctx.emit("node.start", node=name, gen=state.get("generation", 0))
    try:
        update = fn(ctx, state)
    finally:
        charge(ctx)  # also when the node stopped half way: those calls were paid
    ctx.emit("node.end", node=name, gen=state.get("generation", 0))
    return update
