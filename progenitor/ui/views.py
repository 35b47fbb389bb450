"""What each page shows, as plain data: runs, a run's lineage tree and chart, a candidate with
its diff, the inbox of pending decisions, the audit log. Read from the same places the CLI
reads (``progenitor.api``, the decision store, git); the templates only lay it out."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Optional

from progenitor import api
from progenitor.candidate import Candidate
from progenitor.candidate.keys import candidate_name
from progenitor.lineage import Lineage
from progenitor.oversight.store import DecisionStore
from progenitor.run.rundir import STATE_DIR, RunDir, find_run

__all__ = ["audit_view", "candidate_view", "fingerprint", "inbox_view", "run_view", "runs_view"]

DIFF_CAP = 200_000
"""Characters of a diff shown on a page (a candidate may commit a huge one)."""

STATUS_COLOURS = {
    "promoted": "#1a7f37", "scored": "#0969da", "rejected": "#cf222e", "failed": "#bc4c00", "timeout": "#bc4c00",
    "oom": "#bc4c00", "pruned": "#8250df", "reverted": "#6e7781", "escalated": "#9a6700", "baseline": "#24292f",
}


def fingerprint(repo: Path) -> str:
    """Changes whenever a run of ``repo`` moves (its files), a decision is made or the audit log grows."""
    parts = [DecisionStore(repo).fingerprint()]
    state = Path(repo) / STATE_DIR
    for path in sorted(state.glob("runs/*/events.jsonl")) + sorted(state.glob("runs/*/run.json")) + [state / "audit.jsonl"]:
        if path.exists():
            stat = path.stat()
            parts.append(f"{path.parent.name}:{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def runs_view(repo: Path) -> list[dict]:
    waiting: dict[str, int] = {}
    for gate in DecisionStore(repo).pending():
        waiting[gate.run] = waiting.get(gate.run, 0) + 1
    runs = []
    for status in reversed(api.list_runs(repo)):
        summary = status.summary
        runs.append({**status.model_dump(mode="json"), "pending": waiting.get(status.id, 0),
                     "champion": summary.champion if summary else status.champion_value,
                     "baseline_value": summary.baseline if summary else status.baseline_value})
    return runs


def _verdict(c: dict) -> str:
    return (c.get("decision") or {}).get("verdict", "")


def _colour(c: dict) -> str:
    verdict = _verdict(c)
    return STATUS_COLOURS.get(verdict if verdict in ("promoted", "reverted") else c.get("status", ""), "#57606a")


def _tree(base: Optional[str], cands: list[dict]) -> list[dict]:
    """The lineage as nested nodes: each candidate under the commit it was built on."""
    children: dict[Optional[str], list[dict]] = {}
    for c in cands:
        children.setdefault(c.get("parent"), []).append(c)

    def node(c: dict, depth: int) -> dict:
        kids = children.get(c.get("sha")) if c.get("sha") and depth < 50 else None
        return {"cand": c, "colour": _colour(c), "verdict": _verdict(c),
                "children": [node(k, depth + 1) for k in kids or [] if k is not c]}

    return [node(c, 0) for c in children.get(base, [])]


def _chart(metric: str, baseline: Optional[float], cands: list[dict]) -> dict:
    """Plotly figure: every scored candidate a point (by outcome), the champion a step line."""
    groups: dict[str, list[dict]] = {}
    for c in cands:
        value = (c.get("metrics") or {}).get(metric)
        if value is not None:
            groups.setdefault(_verdict(c) if _verdict(c) in ("promoted", "reverted") else c["status"], []).append(c)
    data = [{"type": "scatter", "mode": "markers", "name": name,
             "x": [c["gen"] for c in group], "y": [c["metrics"][metric] for c in group],
             "text": [candidate_name(c["gen"], c["k"]) for c in group], "marker": {"size": 10, "color": STATUS_COLOURS.get(name)}}
            for name, group in sorted(groups.items())]
    last = max((c["gen"] for c in cands), default=0)
    champion, xs, ys = baseline, [], []
    for gen in range(0, last + 1):
        won = [c for c in cands if c["gen"] == gen and _verdict(c) == "promoted"]
        if won:
            champion = won[-1]["metrics"].get(metric, champion)
        if champion is not None:
            xs.append(gen)
            ys.append(champion)
    data.append({"type": "scatter", "mode": "lines+markers", "name": "champion", "x": xs, "y": ys,
                 "line": {"shape": "hv", "color": "#1a7f37", "width": 3}})
    layout = {"xaxis": {"title": {"text": "generation"}, "dtick": 1}, "yaxis": {"title": {"text": metric}},
              "margin": {"l": 60, "r": 20, "t": 20, "b": 50}, "height": 340, "legend": {"orientation": "h"}}
    return {"data": data, "layout": layout}


def _lineage(repo: Path, run_id: str) -> dict:
    """The run's lineage as the templates read it (its JSON: a candidate as its record)."""
    return api.get_lineage(run_id, repo=repo).model_dump(mode="json", by_alias=True)


def run_view(repo: Path, run_id: str) -> dict:
    status = api.run_status(run_id, repo=repo).model_dump(mode="json")
    lineage = _lineage(repo, run_id)
    cands = lineage["candidates"]
    metric = next((c.get("objective") for c in cands if c.get("objective")), None) or _metric(repo, run_id)
    baseline = (status.get("baseline") or {}).get("metrics", {}).get(metric)
    store = DecisionStore(repo)
    promoted = sorted({c["gen"] for c in cands if _verdict(c) == "promoted"})
    return {"status": status, "lineage": lineage, "metric": metric, "baseline": baseline,
            "tree": _tree(lineage.get("base"), cands), "chart": _chart(metric, baseline, cands),
            "pending": store.pending(run_id), "reverts": store.reverts(run_id), "revertable": promoted,
            "gates": store.gates(run_id)}


def _metric(repo: Path, run_id: str) -> str:
    meta = RunDir(repo, run_id).meta
    return ((meta.get("summary") or {}).get("metric")) or "objective"


def diff_html(repo: Path, parent: Optional[str], sha: Optional[str]) -> tuple[str, bool]:
    """The candidate's diff against its parent, syntax-coloured; and whether it was cut."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import DiffLexer

    if not parent or not sha:
        return "", False
    text = Lineage(repo).git.diff("--no-color", "-M", parent, sha)
    cut = len(text) > DIFF_CAP
    return highlight(text[:DIFF_CAP], DiffLexer(), HtmlFormatter(cssclass="highlight")), cut


def candidate_view(repo: Path, run_id: str, gen: int, k: int) -> Optional[dict]:
    lineage = _lineage(repo, run_id)
    record = next((c for c in lineage["candidates"] if c["gen"] == gen and c["k"] == k), None)
    if record is None:
        return None
    cand = Candidate.from_record(record)
    parent = next((c for c in lineage["candidates"] if c.get("sha") == cand.parent), None)
    baseline = (find_run(run_id, repo).meta.get("baseline") or {})
    champion_metrics = (parent or {}).get("metrics") or (baseline.get("metrics") if cand.parent == baseline.get("sha") else {})
    diff, cut = diff_html(repo, cand.parent, cand.sha)
    names = sorted(set(cand.metrics) | set(champion_metrics or {}))
    return {"cand": cand, "record": record, "diff": diff, "diff_cut": cut, "champion_metrics": champion_metrics or {},
            "metric_names": names, "parent_name": candidate_name(parent["gen"], parent["k"]) if parent else "the baseline",
            "colour": _colour(record)}


def _editable(repo: Path, run_id: str) -> dict[str, dict]:
    try:
        spec = Lineage(repo).spec_at(find_run(run_id, repo).meta["base"])
    except Exception:  # noqa: BLE001 - a page without edit fields is still a page
        return {}
    return {name: p.model_dump() for name, p in (spec.search_space.params.items() if spec.search_space else [])}


def inbox_view(repo: Path) -> list[dict]:
    items = []
    for gate in DecisionStore(repo).pending():
        if not RunDir(repo, gate.run).exists():
            continue
        space = _editable(repo, gate.run)
        actions = []
        for action in gate.request["action_requests"]:
            args = action["args"]
            diff, cut = diff_html(repo, args.get("parent"), args.get("commit"))
            names = sorted(set(args.get("metrics", {})) | set(args.get("champion_metrics", {})))
            actions.append({"action": action, "args": args, "diff": diff, "diff_cut": cut, "metric_names": names,
                            "short": args["candidate"].rsplit("/", 1)[-1],
                            "edit": {n: {"value": args.get("params", {}).get(n, ""), **p} for n, p in space.items()}})
        allowed = gate.request["review_configs"][0]["allowed_decisions"]
        items.append({"gate": gate, "actions": actions, "allowed": allowed})
    return items


def audit_view(repo: Path) -> dict[str, Any]:
    from progenitor.oversight.audit import audit_log

    log = audit_log(repo)
    return {"entries": list(reversed(log.entries())), "verification": log.verify() if log.path.exists() else None}
