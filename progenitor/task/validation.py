"""pydantic's errors about a file, as sentences a person can act on: one per problem, each
naming the field and the fix, all of them at once.

Three shapes are folded before they are told:

- a misspelt *required* key is two errors to pydantic (an unknown key, a missing one); told
  apart, the "did you mean" of the first hides behind the second. When the nearest valid name
  of an unknown key is the missing one, they are one problem: the typo, with its fix;
- a value offered to a union (``perfect: 0.9 | auto | null``) fails once per member: one
  problem per field, listing what each member would have taken;
- a rule that relates two fields (``low`` below ``high``, a test split's two halves) is raised
  by a model validator, whose "value" is the whole mapping, or the whole file: it is told as
  its own sentence, which names the fields, never as ``'(top level)' has bad value {...}``.
"""

from __future__ import annotations

import difflib
from types import UnionType
from typing import Annotated, Any, Optional, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from progenitor.errors import UserError

__all__ = ["did_you_mean", "describe_validation_error", "fields_at", "validate_file", "validation_problems"]

SECRET_FIELDS = ("api_key", "key", "token", "api_key_env")
"""Fields whose value may be a key: never echoed."""


_MEMBERS = ("float", "int", "str", "bool", "none")
"""How pydantic names a plain union member in a location (``oversight.perfect.float``)."""


def _field_path(loc: tuple, model: Optional[type[BaseModel]] = None) -> str:
    """``train.resources.cpus``, ``guards[0].min``: the fields of a location, without pydantic's
    own parts (validators, union members). With ``model``, its annotations tell a union member
    from a key that happens to be called ``float``."""
    parts: list[str] = []
    tp: Any = model
    for i, item in enumerate(loc):
        if _is_tag(item):
            continue
        here = _unwrap(tp) if tp is not None else None
        if get_origin(here) in (Union, UnionType) or (here is None and i == len(loc) - 1 and i > 0
                                                      and item in _MEMBERS):
            tp = None  # a union's member: not a field
            continue
        parts.append(f"[{item}]" if isinstance(item, int) else ("." if parts else "") + str(item))
        tp = _child(here, item)
    return "".join(parts) or "(top level)"


def _child(tp: Any, item: Any) -> Any:
    """The annotation one step into ``tp`` (a model's field, a list's item, a dict's value), or None."""
    if _is_model(tp) and item in tp.model_fields:
        return tp.model_fields[item].annotation
    if get_origin(tp) in (list, tuple, set) and isinstance(item, int):
        return get_args(tp)[0]
    if get_origin(tp) is dict:
        return get_args(tp)[1]
    return None


def _is_tag(item: Any) -> bool:
    """pydantic's own parts of a location (validators, tagged union members), never a field."""
    text = str(item)
    return isinstance(item, str) and (text.startswith("function-") or "[" in text)


def _allowed(err: dict) -> str:
    ctx = err.get("ctx") or {}
    kind = err["type"]
    if kind == "literal_error" and "expected" in ctx:
        return f"allowed: {ctx['expected']}"
    if "error" in ctx:
        return str(ctx["error"])
    return err["msg"][0].lower() + err["msg"][1:]


def _unwrap(tp: Any) -> Any:
    """``Optional[X]`` -> ``X``: the model a nullable field holds (``Annotated`` stripped too)."""
    if get_origin(tp) is Annotated:
        return _unwrap(get_args(tp)[0])
    if get_origin(tp) in (Union, UnionType):
        members = [a for a in get_args(tp) if a is not type(None)]
        if len(members) == 1:
            return _unwrap(members[0])
    return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """The field names valid at ``loc`` (an error's location, its last item the bad key), by
    walking the model's annotations through nested models, lists and dicts."""
    tp: Any = model
    for part in loc[:-1]:
        if _is_tag(part):
            continue
        tp = _child(_unwrap(tp), part)
        if tp is None:
            return []
    tp = _unwrap(tp)
    return list(tp.model_fields) if _is_model(tp) else []


def did_you_mean(name: str, choices: list[str]) -> str:
    """``"did you mean 'hidden'?"`` for the nearest of ``choices``, or ``""``."""
    near = difflib.get_close_matches(name, choices, n=1)
    return f"did you mean '{near[0]}'?" if near else ""


def _nearest(err: dict, model: Optional[type[BaseModel]]) -> Optional[str]:
    valid = fields_at(model, err["loc"]) if model is not None else []
    near = difflib.get_close_matches(str(err["loc"][-1]), valid, n=1)
    return near[0] if near else None


def _unknown(err: dict, model: Optional[type[BaseModel]], missing: set[tuple]) -> tuple[str, Optional[tuple]]:
    """The sentence of an unknown key, and the location of the missing key it stands for, if any."""
    field = _field_path(err["loc"], model)
    if field.split(".")[-1] in SECRET_FIELDS:
        return (f"unknown field '{field}'; keys are never written in progenitor.yaml: name the environment "
                f"variable that holds it with api_key_env"), None
    near = _nearest(err, model)
    if near is None:
        return f"unknown field '{field}'; remove it or check its spelling", None
    meant = (*err["loc"][:-1], near)
    if meant in missing:
        return f"unknown field '{field}'; did you mean '{near}'? (a required field, so it is missing too)", meant
    return f"unknown field '{field}'; did you mean '{near}'?", None


def _bad_value(field: str, errs: list[dict]) -> str:
    """One sentence for a field whose value failed (once per union member, for a union)."""
    err = errs[0]
    if err["type"] == "value_error" and isinstance(err.get("input"), dict):
        # A model validator: its rule names the fields it relates; the value is the whole mapping.
        rule = _allowed(err)
        return rule if field == "(top level)" else f"in '{field}': {rule}"
    value = "(not shown)" if field.split(".")[-1] in SECRET_FIELDS else repr(err.get("input"))
    if len(errs) == 1 and (err.get("ctx") or {}).get("error"):
        return f"field '{field}' has bad value {value}: {_allowed(err)}"  # our own validator's sentence
    allowed = "; or ".join(dict.fromkeys(_allowed(e) for e in errs))
    return f"field '{field}' has bad value {value} ({allowed})"


def validation_problems(exc: ValidationError, model: Optional[type[BaseModel]] = None) -> list[str]:
    """One sentence per problem, in the file's order; with ``model`` (the one validated), an
    unknown key gets the nearest valid name at its level."""
    errors = exc.errors()
    missing = {tuple(e["loc"]) for e in errors if e["type"] == "missing"}
    told: dict[str, str] = {}
    grouped: dict[str, list[dict]] = {}
    for err in errors:
        if err["type"] == "extra_forbidden":
            text, meant = _unknown(err, model, missing)
            told[f"extra:{err['loc']}"] = text
            if meant is not None:
                told[f"missing:{meant}"] = ""  # the typo's sentence tells it
        elif err["type"] == "missing":
            told.setdefault(f"missing:{tuple(err['loc'])}",
                            f"required field '{_field_path(err['loc'], model)}' is missing; add it")
        else:
            field = _field_path(err["loc"], model)
            grouped.setdefault(field, []).append(err)
            told.setdefault(f"value:{field}", "")
    for field, errs in grouped.items():
        told[f"value:{field}"] = _bad_value(field, errs)
    return [text for text in told.values() if text]


def describe_validation_error(source: str, exc: ValidationError, model: Optional[type[BaseModel]] = None) -> str:
    """Every problem, each one sentence naming the field and the fix: one line for one, a
    list below a count for several."""
    return _describe(source, validation_problems(exc, model))


def _describe(source: str, problems: list[str]) -> str:
    if len(problems) == 1:
        return f"{source}: {problems[0]}"
    return f"{source}: {len(problems)} problems:" + "".join(f"\n  - {p}" for p in problems)


M = TypeVar("M", bound=BaseModel)


def validate_file(model: type[M], data: Any, source: str, error: type[UserError], of: str = "fields") -> M:
    """``data`` (a file's parsed top level) as ``model``; problems are one ``error`` naming
    ``source``, with each problem (as its own sentence, the source first) in ``problems``."""
    if not isinstance(data, dict):
        raise error(f"{source}: expected a mapping of {of} at the top level, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(exc, model)
        raise error(_describe(source, problems), problems=[f"{source}: {p}" for p in problems]) from None
