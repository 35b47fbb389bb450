"""The loop as a LangGraph ``StateGraph``.

```
 START → prepare → architect → coder → safety_review → training_check ─→ trainer ─┬→ scorer → select → oversight ─→ promote
                       ↑         ↑          ↑            └→ training_gate            │                     └→ promotion_gate
                       │         │          │               → training_decision     │                        → promotion_decision
                       │         │          └──── fixer ←──(a crash to fix)─────────┘
                       │         └─── an edit: a new candidate of the same generation ──────────────────────────┘
                       └─────── promote ──(budget spent / target met / stop)→ END
```

A generation none of whose candidates may be trained (all rejected by the review, or by a
person) goes straight to ``promote``, which records it and starts the next one (or ends): the
rejected candidates are kept, and the generation counts against the budget, so a stubborn
architect cannot loop forever. The two gates (``workflows.gates``) are nodes whose only work
is ``interrupt()``; the nodes around them decide whether to ask and apply the answer. A
candidate that crashed in training gets one fix attempt from the coder, as a new candidate of
the same generation (``fixing``), reviewed and trained like any other; a fix is never fixed
again, so that detour is taken at most once per generation. ``repeats`` trains the best
candidates again with other seeds when ``objective.repeats`` asks for it (``evidence``). The LLM
requests its agents make are charged as each ends (``llm_usage.RunAccount``); a stop asked
for during a node's LLM call (``LlmStopAsked``, the LLM layer's refusal) becomes the run's
``RunStopped`` here, at its edge.

With ``search.mode: async`` (``workflows.asynchronous``) the same nodes run in another order:
``launch`` opens a generation of one candidate before each ``architect``; ``submit`` takes the
trainer's place after the training check (the candidate goes to the pool, nothing waits);
``harvest`` (after each ``submit`` and ``promote``) takes back a finished generation (on through
``trainer``, which looks its training up, to ``promote``), or launches into a free slot, or waits
for either, or ends once nothing is in the pool and nothing may start.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

from progenitor.errors import LlmStopAsked, RunStopped
from progenitor.run.events import NodeEnd, NodeStart
from progenitor.workflows import asynchronous, evidence, fixing, gates, nodes, selection
from progenitor.workflows.state import RunContext, RunState, State, Update

Node = Callable[[RunContext, State], Update]
Router = Callable[[State], str]

NODES_PER_GENERATION = 14
"""Steps of a generation nobody is asked about, a crash-fix detour included (architect, coder,
safety_review, training_check, trainer, fixer, safety_review, training_check, trainer, scorer,
repeats, select, oversight, promote); a gate's interrupt ends an invocation, and the one that
resumes it counts its steps afresh."""


ASYNC_NODES = 6
"""The asynchronous mode's own steps of a generation: launch, submit and harvest (once finding a
free slot, once finding it done), and for a crash's fix a second submit and harvest."""


def recursion_limit(generations: int, asynchronous: bool = False) -> int:
    """Enough steps for every generation plus prepare, and no more: a runaway loop stops."""
    return (NODES_PER_GENERATION + (ASYNC_NODES if asynchronous else 0)) * generations + 10


def build_graph(ctx: RunContext, checkpointer: Any = None):
    """The compiled graph for one run; embed it as a subgraph or invoke it directly."""
    from langgraph.graph import END, START, StateGraph

    graph = StateGraph(RunState)
    steps = {
        "prepare": nodes.prepare,
        "architect": nodes.architect,
        "coder": nodes.coder,
        "safety_review": nodes.safety_review,
        "training_check": gates.training_check,
        "training_decision": gates.training_decision,
        "trainer": nodes.trainer,
        "fixer": fixing.fixer,
        "scorer": nodes.scorer,
        "repeats": evidence.repeats,
        "select": selection.select,
        "oversight": selection.oversight,
        "promotion_decision": gates.promotion_decision,
        "promote": selection.promote,
    }
    for name, fn in steps.items():
        graph.add_node(name, partial(_run_node, name, fn, ctx))
    # The gates run bare: not even a node.start event before their interrupt.
    graph.add_node("training_gate", gates.human_gate)
    graph.add_node("promotion_gate", gates.human_gate)
    graph.add_edge(START, "prepare")
    graph.add_edge("architect", "coder")
    graph.add_edge("coder", "safety_review")
    graph.add_edge("safety_review", "training_check")
    after_gate = {"training_gate": "training_gate", "trainer": "trainer", "scorer": "scorer", "promote": "promote"}
    graph.add_edge("training_gate", "training_decision")
    graph.add_conditional_edges("trainer", _route(fixing.after_training), {"fixer": "fixer", "scorer": "scorer"})
    graph.add_edge("fixer", "safety_review")
    graph.add_edge("scorer", "repeats")
    graph.add_edge("repeats", "select")
    graph.add_edge("select", "oversight")
    graph.add_conditional_edges("oversight", _route(selection.after_oversight),
                                {"promotion_gate": "promotion_gate", "promote": "promote"})
    graph.add_edge("promotion_gate", "promotion_decision")
    graph.add_conditional_edges("promotion_decision", _route(gates.after_promotion_decision),
                                {"coder": "coder", "promote": "promote"})
    if ctx.spec.search.mode == "async":
        _asynchronous(graph, ctx, after_gate)
    else:
        graph.add_edge("prepare", "architect")
        graph.add_conditional_edges("training_check", _route(gates.after_training_check), after_gate)
        graph.add_conditional_edges("training_decision", _route(gates.after_training_decision),
                                    {"coder": "coder", "trainer": "trainer", "scorer": "scorer", "promote": "promote"})
        graph.add_conditional_edges("promote", _route(selection.after_promote), {"architect": "architect", "end": END})
    return graph.compile(checkpointer=checkpointer)


def _asynchronous(graph: Any, ctx: RunContext, after_gate: dict) -> None:
    """``search.mode: async`` (``workflows.asynchronous``): ``launch`` before each architect,
    ``submit`` where the trainer was (hand to the pool, do not wait), ``harvest`` to wait for a
    free slot or a finished generation, which goes on through the trainer (its training looked
    up), scorer, select, oversight and promote as always."""
    from langgraph.graph import END

    for name, fn in (("launch", asynchronous.launch), ("submit", asynchronous.submit),
                     ("harvest", asynchronous.harvest)):
        graph.add_node(name, partial(_run_node, name, fn, ctx))
    graph.add_edge("prepare", "launch")
    graph.add_edge("launch", "architect")
    handed = {**after_gate, "trainer": "submit"}
    graph.add_conditional_edges("training_check", _route(gates.after_training_check), handed)
    graph.add_conditional_edges("training_decision", _route(gates.after_training_decision),
                                {"coder": "coder", "trainer": "submit", "scorer": "scorer", "promote": "promote"})
    graph.add_edge("submit", "harvest")
    graph.add_conditional_edges("harvest", _route(asynchronous.after_harvest),
                                {"launch": "launch", "trainer": "trainer", "end": END})
    graph.add_conditional_edges("promote", _route(partial(asynchronous.after_promote, ctx)),
                                {"harvest": "harvest", "end": END})


def _run_node(name: str, fn: Node, ctx: RunContext, raw: RunState) -> dict:
    """One node's turn: the JSON state typed on the way in, the node's ``Update`` back to JSON on
    the way out (the only two conversions), its start and end told."""
    stop = ctx.run.stop_requested()
    if stop:
        # Raised before the node's work: the checkpoint stays at the node before, so a
        # resume redoes this node, which looks up whatever had already finished.
        raise RunStopped(stop)
    state = State.of(raw)
    ctx.emit(NodeStart(node=name, gen=state.generation))
    try:
        update = fn(ctx, state)
    except LlmStopAsked as exc:  # between two requests: the node is redone on resume, finished ones replayed
        raise RunStopped(str(exc)) from exc
    ctx.emit(NodeEnd(node=name, gen=state.generation))
    return update.to_json()


def _route(router: Router) -> Callable[[RunState], str]:
    """A router of typed state, as LangGraph calls it (with the JSON)."""
    return lambda raw: router(State.of(raw))
