"""Agents by name: the task (``agents:`` in ``progenitor.yaml``) or ``RunOptions`` picks each
role's implementation from here, so that a new architect, coder or reviewer is one class and
one ``register`` call, with no edit to the graph.

A factory is any callable taking an ``AgentContext`` (a class whose ``__init__`` takes one
will do). The built-in implementations are named by import path and imported only when a
run asks for them, so that ``import progenitor`` stays light.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any, Callable, Literal

from progenitor.agents.base import AgentContext
from progenitor.errors import UserError

__all__ = ["ROLES", "Role", "create", "names", "register"]

Role = Literal["architect", "coder", "reviewer"]
ROLES: tuple[str, ...] = ("architect", "coder", "reviewer")
Factory = Callable[[AgentContext], Any]

_BUILTIN: dict[str, dict[str, str]] = {
    "architect": {"search": "progenitor.agents.architect.search:SearchArchitect",
                  "llm": "progenitor.agents.architect.llm:LlmArchitect",
                  "mixed": "progenitor.agents.architect.mixed:MixedArchitect"},
    "coder": {"offline": "progenitor.agents.coder.offline:OfflineCoder",
              "llm": "progenitor.agents.coder.llm:LlmCoder"},
    "reviewer": {"static": "progenitor.agents.safety.reviewer:StaticReviewer",
                 "llm": "progenitor.agents.safety.llm_reviewer:LlmReviewer"},
}
_REGISTERED: dict[str, dict[str, Factory]] = {role: {} for role in ROLES}


def register(role: Role, name: str) -> Callable[[Factory], Factory]:
    """Decorator: ``@register("coder", "mine")`` over a class or a factory function."""
    if role not in ROLES:
        raise ValueError(f"unknown agent role {role!r}; one of {ROLES}")

    def add(factory: Factory) -> Factory:
        _REGISTERED[role][name] = factory
        return factory

    return add


def names(role: Role) -> list[str]:
    return sorted({*_BUILTIN[role], *_REGISTERED[role]})


def factory(role: Role, name: str) -> Factory:
    """The factory registered for ``name``; an unknown name is a ``UserError`` with the choices."""
    if name in _REGISTERED[role]:
        return _REGISTERED[role][name]
    if name in _BUILTIN[role]:
        module, _, attr = _BUILTIN[role][name].partition(":")
        return getattr(importlib.import_module(module), attr)
    known = names(role)
    near = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {near[0]!r}? " if near else ""
    raise UserError(f"unknown {role} {name!r}; {hint}choose one of: {', '.join(known)}")


def create(role: Role, name: str, ctx: AgentContext) -> Any:
    return factory(role, name)(ctx)
