"""What the human gate asks and what it is answered, in LangChain v1's human-in-the-loop shape.

The request (the ``interrupt()`` payload)::

    {"action_requests": [{"name": "promote", "args": {...candidate...}, "description": "..."}],
     "review_configs": [{"action_name": "promote", "allowed_decisions": [...], "args_schema": {...}}],
     "gate": {"id": "g1/promotion", "kind": "promotion", "run": ..., "gen": 1, "description": ...}}

and the answer (``Command(resume=...)``)::

    {"decisions": [{"type": "approve"} | {"type": "edit", "edited_action": {"name", "args": {"params": {...}}}}
                   | {"type": "reject", "message": ...} | {"type": "respond", "message": ...}],
     "decided_by": "human:alice", "comment": ..., "surface": "web"}

one decision per action request, in order. ``gate`` and the ``decided_by`` / ``comment`` /
``surface`` keys are ours; a tool that knows only LangChain's shape may leave them out.
``respond`` is how "request changes" travels: its message goes to the architect. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel

from progenitor.errors import UserError
from progenitor.task.spec import Param, TaskSpec

__all__ = ["DECISION_TYPES", "Answer", "action_args", "build_response", "coerce_by_schema", "coerce_params", "kind_of",
           "make_request", "parse_response", "params_schema"]

DecisionType = Literal["approve", "edit", "reject", "respond"]
DECISION_TYPES: tuple[str, ...] = ("approve", "edit", "reject", "respond")
ALIASES = {"request-changes": "respond", "request_changes": "respond", "changes": "respond"}


class Answer(BaseModel):
    """One decision about one action request, read back from a response."""

    type: DecisionType
    name: str
    """The action it answers (promote, train)."""
    candidate: str
    """``g<gen>/c<k>`` of the action's candidate."""
    message: str = ""
    params: dict[str, Any] = {}
    """The edited values (edit only)."""


def action_args(cand: Any, champion_metrics: dict[str, float], cost: dict, why: list[str]) -> dict:
    """What a person sees about one candidate: commit, diff stats, metrics against the champion,
    findings, cost, hypothesis and values, and why they are asked."""
    return {
        "candidate": cand.key.name, "commit": cand.sha, "parent": cand.parent, "ref": cand.ref,
        "status": cand.status, "hypothesis": cand.proposal.hypothesis,
        "params": dict(cand.params or cand.proposal.params),
        "diff": cand.diff.model_dump() if cand.diff else None,
        "metrics": dict(cand.metrics), "champion_metrics": dict(champion_metrics),
        "findings": [f.model_dump() for f in cand.findings], "cost": cost, "why": why,
        # Is its gain above the noise? The paired test and the repeats (issue 21; the card shows it).
        "evidence": cand.evidence.model_dump() if getattr(cand, "evidence", None) else None,
    }


def params_schema(spec: TaskSpec) -> dict:
    """JSON schema of the values an edit may set (the task's search space)."""
    props: dict[str, dict] = {}
    for name, p in (spec.search_space.params.items() if spec.search_space else []):
        if p.type == "categorical":
            props[name] = {"enum": list(p.choices or [])}
        else:
            props[name] = {"type": "integer" if p.type == "int" else "number", "minimum": p.low, "maximum": p.high}
    return {"type": "object", "properties": {"params": {"type": "object", "properties": props,
                                                         "additionalProperties": False}}}


def make_request(*, run: str, gate: str, kind: str, gen: int, action: str, actions: list[tuple[dict, str]],
                 allowed: list[str], schema: dict, description: str, rules: Optional[dict] = None,
                 context: Optional[dict] = None) -> dict:
    """The interrupt payload; ``actions``: (args, description) per candidate asked about;
    ``rules``: what deciding takes here (``approvals``, ``signatures``, ``allowed_signers``);
    ``context``: what the person needs beside the candidates (the card: luck, test figures, the
    generation, the metrics' directions)."""
    request = {
        "action_requests": [{"name": action, "args": args, "description": text} for args, text in actions],
        "review_configs": [{"action_name": action, "allowed_decisions": list(allowed), "args_schema": schema}],
        "gate": {"id": gate, "kind": kind, "run": run, "gen": gen, "description": description, **(rules or {})},
    }
    if context:
        request["context"] = context
    return request


def kind_of(decision: str) -> str:
    """A decision's name in the store and the audit log: approve, edit, reject, request-changes."""
    return {"respond": "request-changes"}.get(ALIASES.get(decision, decision), decision)


def _allowed(request: dict, name: str) -> list[str]:
    for config in request.get("review_configs", []):
        if config.get("action_name") == name:
            return list(config.get("allowed_decisions", []))
    return []


def parse_response(request: dict, response: Any) -> list[Answer]:
    """One ``Answer`` per action request; a ``UserError`` for a response that does not fit."""
    decisions = response.get("decisions") if isinstance(response, dict) else None
    actions = request["action_requests"]
    if not isinstance(decisions, list) or len(decisions) != len(actions):
        raise UserError(f"a response to {request['gate']['id']} needs one decision per action request "
                        f"({len(actions)}), got {decisions!r:.200}")
    answers = []
    for action, decision in zip(actions, decisions):
        kind = (decision or {}).get("type")
        if kind not in _allowed(request, action["name"]):
            raise UserError(f"decision {kind!r} is not allowed at {request['gate']['id']}; "
                            f"allowed: {', '.join(_allowed(request, action['name']))}")
        params = {}
        if kind == "edit":
            args = ((decision.get("edited_action") or {}).get("args")) or {}
            params = args.get("params") if isinstance(args.get("params"), dict) else {}
            if not params:
                raise UserError("an edit needs edited_action.args.params: the values to train instead")
        answers.append(Answer(type=kind, name=action["name"], candidate=action["args"]["candidate"],
                              message=str(decision.get("message") or ""), params=params))
    return answers


def build_response(request: dict, kind: str, *, by: str, comment: str = "", surface: str = "api",
                   edits: Optional[dict[str, dict]] = None) -> dict:
    """The response a person's one decision makes: ``kind`` for every action, except that with
    ``edits`` (candidate -> values) the edited candidates are ``edit`` and the others approved."""
    kind = ALIASES.get(kind, kind)
    if kind not in DECISION_TYPES:
        raise UserError(f"unknown decision {kind!r}; use approve, reject, edit or request-changes")
    if kind in ("reject", "respond") and not comment.strip():
        raise UserError(f"{'reject' if kind == 'reject' else 'request-changes'} needs a comment that says why")
    edits = {_short(k): v for k, v in (edits or {}).items()}
    if kind == "edit" and not edits:
        raise UserError("edit needs the values to change, like c0.lr=0.01")
    decisions = []
    for action in request["action_requests"]:
        name = _short(action["args"]["candidate"])
        if kind == "edit" and name in edits:
            decisions.append({"type": "edit", "edited_action": {"name": action["name"], "args": {"params": edits.pop(name)}}})
        elif kind == "edit":
            decisions.append({"type": "approve"})
        elif kind in ("reject", "respond"):
            decisions.append({"type": kind, "message": comment})
        else:
            decisions.append({"type": "approve"})
    if edits:
        raise UserError(f"{', '.join(edits)} is not asked about at {request['gate']['id']}; "
                        f"these are: {', '.join(_short(a['args']['candidate']) for a in request['action_requests'])}")
    response = {"decisions": decisions, "decided_by": by, "comment": comment, "surface": surface}
    parse_response(request, response)  # what the gate allows, checked before anything is stored
    return response


def _short(name: Union[str, int]) -> str:
    """c0, g1/c0 or 0 -> c0."""
    text = str(name)
    text = text.rsplit("/", 1)[-1]
    return text if text.startswith("c") else f"c{text}"


def _coerce(name: str, param: Param, value: Any) -> Any:
    if param.type == "categorical":
        for choice in param.choices or []:
            if value == choice or str(value) == str(choice):
                return choice
        raise UserError(f"edit: {name} must be one of {param.choices}, not {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError(f"edit: {name} must be a number, not {value!r}") from None
    if param.type == "int":
        if not number.is_integer():
            raise UserError(f"edit: {name} must be a whole number, not {value!r}")
        number = int(number)
    if not param.low <= number <= param.high:
        raise UserError(f"edit: {name} must lie in [{param.low:g}, {param.high:g}], not {value!r}")
    return number


def coerce_by_schema(request: dict, params: dict[str, Any]) -> dict[str, Any]:
    """Edited values checked against the gate's own ``args_schema`` (the task's search space as
    the request carries it), so a page or shell without the run's repo can check them too."""
    configs = request.get("review_configs") or [{}]
    props = (((configs[0].get("args_schema") or {}).get("properties") or {}).get("params") or {}).get("properties") or {}
    out = {}
    for name, value in params.items():
        if name not in props:
            raise UserError(f"edit: {name!r} is not in search_space.params; editable: {', '.join(props) or 'none'}")
        p = props[name]
        if "enum" in p:
            param = Param(type="categorical", choices=list(p["enum"]))
        else:
            param = Param(type="int" if p.get("type") == "integer" else "float", low=p["minimum"], high=p["maximum"])
        out[name] = _coerce(name, param, value)
    return out


def coerce_params(spec: TaskSpec, params: dict[str, Any]) -> dict[str, Any]:
    """Edited values checked against the search space (a text from a form or the CLI becomes a number)."""
    space = spec.search_space.params if spec.search_space else {}
    out = {}
    for name, value in params.items():
        if name not in space:
            raise UserError(f"edit: {name!r} is not in search_space.params; editable: {', '.join(space) or 'none'}")
        out[name] = _coerce(name, space[name], value)
    return out
