"""Which commit a candidate is built on: the champion (a hill-climb), or any node of the lineage.

With ``search.parents: archive`` every candidate draws its parent from the whole lineage, the
way open-ended archives do (the Darwin Gödel Machine, Zhang et al. 2025): a node's chance grows
with its score and shrinks with the children it already has, so the search keeps improving its
best nodes without piling every candidate onto one of them. The rule, for the nodes eligible:

1. ``s`` = the node's objective scaled to [0, 1] over the eligible nodes in the goal's direction
   (the best 1, the worst 0; all 1 when they are equal);
2. ``weight = sigmoid(10 * (s - 0.5)) / (1 + children)``: a node in the top half of the range is
   several times as likely as one in the bottom half, and each child halves, thirds, ... its share;
3. one node drawn with chance proportional to its weight, by a generator seeded from the run's
   seed, the generation and the candidate's index (the same draw again on a resume).

Eligible: the human baseline, and every candidate that was scored and passed its guards (not
one a person rejected, nor one reverted). For an architect that can debug (an LLM), a candidate
that crashed in training (failed, out of memory, timed out) is eligible too, for a *debug* step,
weighed as its parent (what it would score once it runs) at half the weight.

A small pure function of the lineage, asked one candidate at a time (``choose``): whoever asks
adds the children it has handed out since it last read the lineage.
"""

from __future__ import annotations

import math
import random
from typing import Any

from progenitor.agents.base import Parent

__all__ = ["CRASHES", "Node", "choose", "nodes_of", "weights"]

CRASHES = ("failed", "timeout", "oom")
"""Training ends a debug step may fix (not pruned: it ran, and was behind)."""
STEEPNESS = 10.0
"""How sharply the weight prefers the top of the score range (the DGM's lambda)."""
DEBUG_SHARE = 0.5
"""A crashed node's weight, as a share of what its parent's score would give it."""


Node = Parent
"""A node of the lineage as parent selection sees it (``agents.base.Parent``)."""


def nodes_of(baseline: Node, records: list[Any], debug: bool = False) -> list[Node]:
    """The eligible nodes of a lineage: the baseline and the candidates' records (``Candidate``)
    that qualify, children counted from every record's parent."""
    children: dict[str, int] = {}
    for cand in records:
        if cand.parent and cand.fix_of is None:
            children[cand.parent] = children.get(cand.parent, 0) + 1
    by_sha = {baseline.sha: baseline}
    nodes = [baseline.model_copy(update={"children": children.get(baseline.sha, 0)})]
    for cand in records:
        if cand.sha is None or cand.sha in by_sha:
            continue
        verdict = cand.decision.verdict if cand.decision else ""
        by = cand.decision.by if cand.decision else ""
        if verdict == "reverted" or (by.startswith("human:") and verdict != "promoted"):
            continue
        common = dict(name=cand.key.name, sha=cand.sha, params=dict(cand.params), metrics=dict(cand.metrics),
                      children=children.get(cand.sha, 0), hypothesis=cand.proposal.hypothesis)
        if cand.status == "scored" and not cand.guard_failed and cand.value is not None:
            node = Node(value=cand.value, **common)
        elif debug and cand.status in CRASHES and cand.parent in by_sha and by_sha[cand.parent].value is not None:
            node = Node(value=by_sha[cand.parent].value, kind="debug", reason=cand.reason, **common)
        else:
            continue
        by_sha[cand.sha] = node
        nodes.append(node)
    return nodes


def weights(nodes: list[Node], goal: str) -> list[float]:
    """Each node's weight under the rule above (not normalised)."""
    sign = 1.0 if goal == "maximize" else -1.0
    values = [sign * n.value for n in nodes if n.value is not None]
    low, high = (min(values), max(values)) if values else (0.0, 0.0)
    out = []
    for n in nodes:
        if n.value is None:
            out.append(0.0)
            continue
        s = 1.0 if high == low else (sign * n.value - low) / (high - low)
        w = 1.0 / (1.0 + math.exp(-STEEPNESS * (s - 0.5))) / (1 + n.children)
        out.append(w * (DEBUG_SHARE if n.kind == "debug" else 1.0))
    return out


def choose(nodes: list[Node], goal: str, seed: int, gen: int, k: int) -> Node:
    """The parent of candidate ``k`` of generation ``gen``, drawn by the rule above."""
    if not nodes:
        raise ValueError("no node to build on")
    w = weights(nodes, goal)
    if sum(w) <= 0:
        return nodes[0]
    rng = random.Random(f"progenitor-parents/{seed}/{gen}/{k}")
    return rng.choices(nodes, weights=w, k=1)[0]
