"""What each page shows, as plain data: runs, a run's lineage (folded by generation) and chart,
a candidate, a comparison, the inbox of pending decisions with their cards, the audit log.
Read from the same places the CLI reads (``progenitor.api``, the decision store, git); a gate of
a run on another machine (a team store) is shown from the store alone. The templates only lay
it out; text a candidate controls passes ``text`` (hidden characters marked)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Optional

from progenitor import api
from progenitor.candidate import Candidate
from progenitor.candidate.keys import candidate_name
from progenitor.errors import UserError
from progenitor.evaluation.after_scoring import directions
from progenitor.lineage import Lineage
from progenitor.oversight.accounts import Identity, may
from progenitor.oversight.store import DecisionStore, Gate
from progenitor.run.rundir import STATE_DIR, RunDir, find_run
from progenitor.ui import card, text

__all__ = ["audit_view", "candidate_view", "compare_view", "fingerprint", "inbox_view", "run_view", "runs_view"]

DIFF_CAP = 200_000
"""Characters of a diff shown on a page (a candidate may commit a huge one)."""
COMPARE_MAX = 6
"""Candidates one comparison shows side by side."""

STATUS_COLOURS = {
    "promoted": "#1a7f37", "scored": "#0969da", "rejected": "#cf222e", "failed": "#bc4c00", "timeout": "#bc4c00",
    "oom": "#bc4c00", "pruned": "#8250df", "reverted": "#6e7781", "escalated": "#9a6700", "baseline": "#24292f",
}
GATE_COLOUR = "#d4a72c"


def fingerprint(repo: Path, store: DecisionStore) -> str:
    """Changes whenever a run of ``repo`` moves (its files), a decision is made or the audit log grows."""
    parts = [store.fingerprint()]
    state = Path(repo) / STATE_DIR
    for path in sorted(state.glob("runs/*/events.jsonl")) + sorted(state.glob("runs/*/run.json")) + [state / "audit.jsonl"]:
        if path.exists():
            stat = path.stat()
            parts.append(f"{path.parent.name}:{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def runs_view(repo: Path, store: DecisionStore) -> list[dict]:
    waiting: dict[str, int] = {}
    for gate in store.pending():
        waiting[gate.run] = waiting.get(gate.run, 0) + 1
    runs = []
    for status in reversed(api.list_runs(repo)):
        summary = status.summary
        runs.append({**status.model_dump(mode="json"), "pending": waiting.get(status.id, 0), "host": "",
                     "champion": summary.champion if summary else status.champion_value,
                     "baseline_value": summary.baseline if summary else status.baseline_value})
    local = {r["id"] for r in runs}
    for other in reversed(store.runs() if store.shared else []):
        if other["run"] not in local:
            runs.append({"id": other["run"], "task": other["task"], "status": "elsewhere", "host": other["host"],
                         "repo": other["repo"], "generation": "", "pending": waiting.get(other["run"], 0),
                         "created": other["created"], "champion": None, "baseline_value": None, "waiting": None})
    return runs


def _verdict(c: dict) -> str:
    return (c.get("decision") or {}).get("verdict", "")


def _colour(c: dict) -> str:
    verdict = _verdict(c)
    return STATUS_COLOURS.get(verdict if verdict in ("promoted", "reverted") else c.get("status", ""), "#57606a")


def _at_gate(store: DecisionStore, run_id: str) -> set[str]:
    """The candidates a pending gate of the run asks about."""
    return {a["args"]["candidate"] for g in store.pending(run_id) for a in g.request["action_requests"]}


def _generations(cands: list[dict], metric: str, goal: str, asked: set[str]) -> list[dict]:
    """The lineage folded by generation: each one a row of candidates, open when it is the last or
    a gate asks about one of them."""
    names = {c.get("sha"): candidate_name(c["gen"], c["k"]) for c in cands if c.get("sha")}
    sign = 1 if goal == "maximize" else -1
    gens: dict[int, list[dict]] = {}
    for c in cands:
        name = candidate_name(c["gen"], c["k"])
        value = (c.get("metrics") or {}).get(metric)
        gens.setdefault(c["gen"], []).append({
            "cand": c, "name": name, "colour": _colour(c), "verdict": _verdict(c), "value": value,
            "parent": names.get(c.get("parent"), "baseline"), "asked": name in asked})
    last = max(gens, default=0)
    out = []
    for gen, nodes in sorted(gens.items()):
        scored = [n for n in nodes if n["value"] is not None]
        best = max(scored, key=lambda n: sign * n["value"]) if scored else None
        promoted = [n["name"] for n in nodes if n["verdict"] == "promoted"]
        out.append({"gen": gen, "nodes": nodes, "best": best, "promoted": promoted,
                    "open": gen == last or any(n["asked"] for n in nodes)})
    return out


def _chart(metric: str, baseline: Optional[float], cands: list[dict], asked: set[str]) -> dict:
    """Plotly figure: every scored candidate a point (by outcome), the champion a step line, the
    candidates at a gate ringed."""
    groups: dict[str, list[dict]] = {}
    for c in cands:
        if (c.get("metrics") or {}).get(metric) is not None:
            groups.setdefault(_verdict(c) if _verdict(c) in ("promoted", "reverted") else c["status"], []).append(c)
    data = [{"type": "scatter", "mode": "markers", "name": name,
             "x": [c["gen"] for c in group], "y": [c["metrics"][metric] for c in group],
             "text": [candidate_name(c["gen"], c["k"]) for c in group], "marker": {"size": 10, "color": STATUS_COLOURS.get(name)}}
            for name, group in sorted(groups.items())]
    gated = [c for group in groups.values() for c in group if candidate_name(c["gen"], c["k"]) in asked]
    if gated:
        data.append({"type": "scatter", "mode": "markers", "name": "at the gate",
                     "x": [c["gen"] for c in gated], "y": [c["metrics"][metric] for c in gated],
                     "text": [candidate_name(c["gen"], c["k"]) for c in gated],
                     "marker": {"size": 22, "symbol": "star-open", "color": GATE_COLOUR, "line": {"width": 3}}})
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
              "margin": {"l": 50, "r": 10, "t": 10, "b": 40}, "height": 320, "legend": {"orientation": "h"},
              "autosize": True}
    return {"data": data, "layout": layout}


def _lineage(repo: Path, run_id: str) -> dict:
    """The run's lineage as the templates read it (its JSON: a candidate as its record)."""
    return api.get_lineage(run_id, repo=repo).model_dump(mode="json", by_alias=True)


def _local(repo: Path, store: DecisionStore, run_id: str) -> RunDir:
    """The run's directory here; a run another machine drives (a team store) is named as such."""
    try:
        return find_run(run_id, repo)
    except UserError:
        other = next((r for r in store.runs() if r["run"] == run_id), None) if store.shared else None
        if other:
            raise UserError(f"run {run_id} lives on {other['host']} (in {other['repo']}): this page shows its gates "
                            f"in the inbox; its lineage is on that machine") from None
        raise UserError(f"no run {run_id!r} in this model repo") from None


def _spec(repo: Path, run: RunDir):
    try:
        return Lineage(repo).spec_at(run.meta["base"])
    except Exception:  # noqa: BLE001 - a page without directions is still a page
        return None


def run_view(repo: Path, store: DecisionStore, run_id: str) -> dict:
    run = _local(repo, store, run_id)
    status = api.run_status(run_id, repo=repo).model_dump(mode="json")
    lineage = _lineage(repo, run_id)
    cands = lineage["candidates"]
    spec = _spec(repo, run)
    metric = spec.objective.metric if spec else (status.get("metric") or "objective")
    goal = spec.objective.goal if spec else "maximize"
    baseline = (status.get("baseline") or {}).get("metrics", {}).get(metric)
    asked = _at_gate(store, run_id)
    promoted = sorted({c["gen"] for c in cands if _verdict(c) == "promoted"})
    path = [candidate_name(c["gen"], c["k"]) for c in cands if _verdict(c) == "promoted"]
    return {"status": status, "lineage": lineage, "metric": metric, "baseline": baseline, "goal": goal,
            "generations": _generations(cands, metric, goal, asked), "chart": _chart(metric, baseline, cands, asked),
            "pending": store.pending(run_id), "reverts": store.reverts(run_id), "revertable": promoted,
            "gates": store.gates(run_id), "champion_path": path, "count": len(cands)}


def diff_text(repo: Path, parent: Optional[str], sha: Optional[str]) -> tuple[str, bool]:
    """A commit's diff against its parent (cut at ``DIFF_CAP``), and whether it was cut."""
    if not parent or not sha:
        return "", False
    text_ = Lineage(repo).git.diff("--no-color", "-M", parent, sha)
    return text_[:DIFF_CAP], len(text_) > DIFF_CAP


def _curves(run: RunDir, spec: Any, gen: int, k: int) -> dict:
    from progenitor.compute.pruning import read_curves

    progress = spec.train.progress if spec else None
    path = run.path / candidate_name(gen, k) / "out" / progress if progress else None
    return read_curves(path) if path and path.is_file() else {}


def candidate_view(repo: Path, store: DecisionStore, run_id: str, gen: int, k: int) -> dict:
    run = _local(repo, store, run_id)
    lineage = _lineage(repo, run_id)
    record = next((c for c in lineage["candidates"] if c["gen"] == gen and c["k"] == k), None)
    if record is None:
        raise UserError(f"run {run_id} has no candidate {candidate_name(gen, k)}")
    cand = Candidate.from_record(record)
    parent = next((c for c in lineage["candidates"] if c.get("sha") == cand.parent), None)
    baseline = run.meta.get("baseline") or {}
    champion_metrics = (parent or {}).get("metrics") or (baseline.get("metrics") if cand.parent == baseline.get("sha") else {})
    spec = _spec(repo, run)
    raw, cut = diff_text(repo, cand.parent, cand.sha)
    metric = spec.objective.metric if spec else cand.objective
    test = ({"metric": f"test_{metric}", "baseline": (baseline.get("test_metrics") or {}).get(f"test_{metric}"),
             "champion": None} if spec and spec.data.test else None)
    return {"cand": cand, "record": record, "diff": text.diff_html(raw), "diff_cut": cut,
            "hidden": text.reveal_count(raw), "colour": _colour(record),
            "rows": card.metric_rows(cand.metrics, champion_metrics or {}, baseline.get("metrics") or {},
                                     directions(spec) if spec else {}),
            "parent_name": candidate_name(parent["gen"], parent["k"]) if parent else "the baseline",
            "test": card.test_text(test, cand.test_metrics.get(f"test_{metric}")) if test else "",
            "curve": _curve_chart(_curves(run, spec, gen, k)), "cost": card.cost_text(record.get("cost")),
            "asked": candidate_name(gen, k) in _at_gate(store, run_id)}


def compare_view(repo: Path, run_id: str, names: list[str]) -> dict:
    """Two or more candidates of a run side by side: values, metrics, curves, diffs."""
    run = find_run(run_id, repo)
    lineage = _lineage(repo, run_id)
    by_name = {candidate_name(c["gen"], c["k"]): c for c in lineage["candidates"]}
    picked = list(dict.fromkeys(n.strip() for n in names if n.strip()))[:COMPARE_MAX]
    unknown = [n for n in picked if n not in by_name]
    if unknown:
        raise UserError(f"run {run_id} has no candidate {', '.join(unknown)}")
    spec = _spec(repo, run)
    cols = []
    for name in picked:
        c = by_name[name]
        raw, cut = diff_text(repo, c.get("parent"), c.get("sha"))
        cols.append({"name": name, "record": c, "colour": _colour(c), "diff": text.diff_html(raw), "cut": cut,
                     "curves": _curves(run, spec, c["gen"], c["k"])})
    params = sorted({p for col in cols for p in (col["record"].get("params") or col["record"]["proposal"]["params"])})
    metrics = sorted({m for col in cols for m in (col["record"].get("metrics") or {})})
    dirs = directions(spec) if spec else {}
    return {"cols": cols, "params": params, "metrics": metrics, "directions": dirs, "enough": len(cols) >= 2,
            "best": _best(cols, metrics, dirs), "curve_figure": _curve_figure(cols)}


def _best(cols: list[dict], metrics: list[str], dirs: dict) -> dict[str, str]:
    """For each metric with a direction, the column that does best."""
    best = {}
    for m in metrics:
        goal = dirs.get(m, {}).get("goal")
        values = [(col["record"].get("metrics") or {}).get(m) for col in cols]
        known = [(v, col["name"]) for v, col in zip(values, cols) if isinstance(v, (int, float))]
        if goal and len(known) > 1:
            best[m] = (max if goal == "maximize" else min)(known)[1]
    return best


def _curve_figure(cols: list[dict]) -> Optional[dict]:
    data = []
    for col in cols:
        for metric, points in col["curves"].items():
            data.append({"type": "scatter", "mode": "lines+markers", "name": f"{col['name']} {metric}",
                         "x": [p[0] for p in points], "y": [p[1] for p in points]})
    if not data:
        return None
    return {"data": data, "layout": {"xaxis": {"title": {"text": "step"}}, "height": 300, "autosize": True,
                                     "margin": {"l": 50, "r": 10, "t": 10, "b": 40}, "legend": {"orientation": "h"}}}


def _curve_chart(curves: dict) -> Optional[dict]:
    if not curves:
        return None
    data = [{"type": "scatter", "mode": "lines+markers", "name": m, "x": [p[0] for p in pts], "y": [p[1] for p in pts]}
            for m, pts in curves.items()]
    return {"data": data, "layout": {"xaxis": {"title": {"text": "step"}}, "height": 240, "autosize": True,
                                     "margin": {"l": 50, "r": 10, "t": 10, "b": 40}, "legend": {"orientation": "h"}}}


def _editable(request: dict) -> dict[str, dict]:
    """The search space as the gate's own request carries it (a page on another machine too)."""
    props = (((request.get("review_configs") or [{}])[0].get("args_schema") or {}).get("properties") or {})
    space = (props.get("params") or {}).get("properties") or {}
    out = {}
    for name, p in space.items():
        if "enum" in p:
            out[name] = {"type": "categorical", "choices": p["enum"]}
        else:
            out[name] = {"type": p.get("type"), "low": p.get("minimum"), "high": p.get("maximum")}
    return out


def _action(repo: Path, gate: Gate, action: dict, context: dict) -> dict:
    args = action["args"]
    name = args["candidate"]
    kept = gate.details.get("diffs", {}).get(name)
    raw, cut = (kept["text"], kept["cut"]) if kept else diff_text(repo, args.get("parent"), args.get("commit"))
    gain = (args.get("gain") or {}).get("over_baseline")
    luck, within = card.luck_text(context.get("luck"), gain)
    return {"action": action, "args": args, "diff": text.diff_html(raw), "diff_cut": cut,
            "hidden": text.reveal_count(raw), "short": name.rsplit("/", 1)[-1],
            "rows": card.metric_rows(args.get("metrics", {}), args.get("champion_metrics", {}),
                                     context.get("baseline", {}), context.get("directions", {})),
            "luck": luck, "within_luck": within, "cost": card.cost_text(args.get("cost")),
            "curve": _curve_chart(gate.details.get("curves", {}).get(name, {})),
            "edit": {n: {"value": args.get("params", {}).get(n, ""), **p} for n, p in _editable(gate.request).items()}}


def inbox_view(repo: Path, store: DecisionStore, me: Optional[Identity]) -> list[dict]:
    items = []
    for gate in store.pending():
        if not store.shared and not RunDir(repo, gate.run).exists():
            continue
        context = gate.request.get("context") or {}
        approvals = store.approvals(gate.run, gate.gate) if gate.approvals_needed > 1 else []
        mine = me is not None and any(a["by"] == me.actor for a in approvals)
        rules = gate.request.get("gate", {})
        items.append({
            "gate": gate, "actions": [_action(repo, gate, a, context) for a in gate.request["action_requests"]],
            "allowed": gate.request["review_configs"][0]["allowed_decisions"], "context": context,
            "test": card.test_text(context.get("test")) if "test" in context else "",
            "approvals": approvals, "needed": gate.approvals_needed, "mine": mine,
            "signatures": rules.get("signatures") == "required", "escalated": bool(rules.get("escalated")),
            "can_decide": me is not None and may(me.role, "decide") and not mine,
            "elsewhere": store.shared and not RunDir(repo, gate.run).exists(),
        })
    return items


def audit_view(repo: Path, store: DecisionStore) -> dict[str, Any]:
    from progenitor.api import task_signers
    from progenitor.oversight.signatures import AllowedSigners

    log = store.audit_log(repo)
    signers_file = task_signers(Path(repo))
    verification = log.verify(signers=AllowedSigners.load(signers_file) if signers_file else None) if log.exists() \
        else None
    signed = {s.entry: s for s in (verification.signed if verification else [])}
    return {"entries": list(reversed(log.entries())), "verification": verification, "signed": signed}
