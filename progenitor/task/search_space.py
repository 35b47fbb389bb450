"""The declared search space against the things it describes: the config file's keys, the
baseline's values, and every proposal's values.

- ``space_problems``: a ``search_space.file`` missing from the tree, or a ``params`` key the
  file does not have, would waste a whole budget in silence (the coder would create the file
  or the key, and training would never read it), so both are errors at run start;
- ``outside_space``: baseline values the space does not contain (the search then starts
  without the baseline as a known point);
- ``validate_proposal``: the one place a proposed value meets its knob: an int knob gets an
  int, a value out of range or of the wrong type is the architect's error for that candidate.
"""

from __future__ import annotations

import difflib
import math
import reprlib
from typing import Any, Callable, Optional

from progenitor.errors import ModelBehaviorError, UserError
from progenitor.task.config_files import parse_config
from progenitor.task.spec import Param, SearchSpace

__all__ = ["check_value", "config_keys", "outside_space", "space_problems", "validate_proposal"]


def config_keys(data: dict, prefix: str = "") -> list[str]:
    """Every key of a parsed config file, dotted for nesting (``model.hidden``)."""
    keys = []
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        keys.append(dotted)
        if isinstance(value, dict):
            keys += config_keys(value, dotted + ".")
    return keys


def _nearest(name: str, choices: list[str]) -> str:
    near = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f"; did you mean '{near[0]}'?" if near else ""


def space_problems(space: SearchSpace, files: list[str], read: Callable[[str], Optional[str]],
                   where: str) -> list[str]:
    """Why the search space does not fit the tree: one sentence per problem.

    ``files`` lists the tree's paths, ``read(path)`` returns a file's text; ``where`` names
    the tree in messages (``commit 1a2b3c4d``)."""
    text = read(space.file)
    if text is None:
        return [f"search_space.file '{space.file}' is not in {where}: every candidate would train the "
                f"unchanged baseline{_nearest(space.file, files)}"]
    try:
        data = parse_config(text, space.file)
    except UserError as exc:
        return [f"search_space.file {exc}"]
    keys = config_keys(data)
    return [f"search_space.params key '{name}' is not in {space.file}, so training would never read it "
            f"(a dead knob){_nearest(name, keys)}"
            for name in space.params if name not in keys]


_SAID = reprlib.Repr()
_SAID.maxlevel, _SAID.maxlist, _SAID.maxdict, _SAID.maxstring, _SAID.maxother = 2, 4, 4, 60, 60


def _said(value: Any) -> str:
    """A value in a sentence, cut short: a values file may be the candidate's, and a YAML alias
    bomb of a few hundred bytes written out whole is 10^10 strings (``reprlib`` stops early);
    an integer too long for ``repr`` (YAML's hexadecimal ones skip Python's 4,300-digit limit)
    is named by its size."""
    try:
        return _SAID.repr(value)
    except ValueError:
        return f"(a value too long to write: {type(value).__name__})"


_HUGE_BITS = 1024
"""An integer longer than this is no float (``math.isfinite`` raises ``OverflowError`` on it)."""


def check_value(name: str, param: Param, value: Any) -> tuple[Any, Optional[str]]:
    """(the value as the knob takes it, or why it does not fit): ``3.0`` for an int knob is
    ``3``; ``3.5`` is a problem, as is a value outside ``low``..``high`` or the choices."""
    if param.type == "categorical":
        if value not in (param.choices or []):
            return value, f"{name} {_said(value)} is not one of its choices {param.choices}"
        return value, None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value, f"{name} {_said(value)} is not a number ({param.type} knob)"
    if isinstance(value, int) and value.bit_length() > _HUGE_BITS:
        return value, f"{name} is an integer of {value.bit_length()} bits, beyond any float"
    if not math.isfinite(value):
        return value, f"{name} {_said(value)} is not a finite number"
    if param.type == "int":
        if not float(value).is_integer():
            return value, f"{name} {_said(value)} is not a whole number (int knob)"
        value = int(value)
    if value < param.low or value > param.high:
        bound = f"below low {param.low:g}" if value < param.low else f"above high {param.high:g}"
        return value, f"{name} {_said(value)} is {bound}" + (" (a log range)" if param.log else "")
    return value, None


def outside_space(space: SearchSpace, values: dict[str, Any]) -> list[str]:
    """The baseline values the declared space does not contain, one phrase each."""
    problems = []
    for name, param in space.params.items():
        if values.get(name) is None:
            problems.append(f"{name} is not set")
            continue
        _, problem = check_value(name, param, values[name])
        if problem:
            problems.append(problem)
    return problems


def validate_proposal(space: Optional[SearchSpace], params: dict[str, Any]) -> dict[str, Any]:
    """The proposal's values as their knobs take them; a value that does not fit its knob is
    a ``ModelBehaviorError`` (the candidate fails with that reason). Keys outside the space
    (other config values a scripted or LLM architect sets) pass through unchanged."""
    if space is None:
        return dict(params)
    checked = {}
    for name, value in params.items():
        param = space.params.get(name)
        if param is None:
            checked[name] = value
            continue
        checked[name], problem = check_value(name, param, value)
        if problem:
            raise ModelBehaviorError(f"proposed value out of the search space: {problem}")
    return checked
