"""Structured replies: the JSON object in a model's answer, validated by a pydantic model.

A reply that does not parse or validate raises ``ReplyError`` with a message written for
the model (which field, what was wrong), which the session sends back to it.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

__all__ = ["ReplyError", "describe", "extract_json", "parse_json"]

M = TypeVar("M", bound=BaseModel)

_FENCE = re.compile(r"```(?:json)?\s*\n(.*?)```", re.DOTALL)


class ReplyError(ValueError):
    """A reply that cannot be used; its message is shown to the model."""


def extract_json(text: str) -> Any:
    """The JSON value of a reply: the whole text, a fenced block, or the outermost ``{...}``."""
    text = text.strip()
    candidates = [text, *_FENCE.findall(text)]
    if "{" in text and "}" in text:
        candidates.append(text[text.index("{"): text.rindex("}") + 1])
    error = None
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except json.JSONDecodeError as exc:
            error = error or exc
        except RecursionError:  # nested past what the parser holds: not an answer either
            continue
    where = f": {error.msg} at line {error.lineno} column {error.colno}" if error else ""
    raise ReplyError(f"the reply is not valid JSON{where}; answer with one JSON object and nothing else")


def describe(exc: ValidationError) -> str:
    """pydantic's errors as short lines a model can act on (no documentation links)."""
    lines = []
    for err in exc.errors()[:8]:
        where = ".".join(str(p) for p in err["loc"]) or "(the object)"
        lines.append(f"- {where}: {err['msg']}")
    more = len(exc.errors()) - 8
    return "the JSON does not match the schema:\n" + "\n".join(lines) + (f"\n- and {more} more" if more > 0 else "")


def parse_json(text: str, model: type[M]) -> M:
    data = extract_json(text)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ReplyError(describe(exc)) from None
