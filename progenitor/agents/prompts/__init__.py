"""The LLM agents' prompts: one packaged YAML file per role, each part a Jinja2 template
rendered with ``StrictUndefined`` (a variable the code forgot to pass is an error, never an
empty string in front of a model). ``progenitor prompts show ROLE`` prints a role's file.
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from importlib import resources
from typing import Any

from progenitor.errors import ProgenitorError, UserError

__all__ = ["PromptError", "ROLES", "messages", "parts", "render", "source"]

ROLES = ("architect", "coder", "reviewer")


class PromptError(ProgenitorError):
    """A template could not be rendered (a bug: a variable missing, a syntax error)."""


def source(role: str) -> str:
    """The role's template file, as packaged."""
    if role not in ROLES:
        near = difflib.get_close_matches(role, ROLES, n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise UserError(f"no prompt for role {role!r}; {hint}choose one of: {', '.join(ROLES)}")
    return resources.files(__name__).joinpath(f"{role}.yaml").read_text(encoding="utf-8")


@lru_cache(maxsize=None)
def parts(role: str) -> dict[str, str]:
    """The role's templates by part (system, user, repair, ...)."""
    import yaml

    data = yaml.safe_load(source(role))
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise PromptError(f"prompts/{role}.yaml must map part names to template text")
    return data


@lru_cache(maxsize=1)
def _env():
    import jinja2

    return jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, trim_blocks=True,
                              lstrip_blocks=True, autoescape=False)


def render(role: str, part: str, **variables: Any) -> str:
    import jinja2

    templates = parts(role)
    if part not in templates:
        raise PromptError(f"prompts/{role}.yaml has no part {part!r} (it has: {', '.join(templates)})")
    try:
        return _env().from_string(templates[part]).render(**variables).strip() + "\n"
    except jinja2.UndefinedError as exc:
        raise PromptError(f"prompts/{role}.yaml, part {part!r}: {exc.message}") from None
    except jinja2.TemplateSyntaxError as exc:
        raise PromptError(f"prompts/{role}.yaml, part {part!r}, line {exc.lineno}: {exc.message}") from None


def messages(role: str, part: str, **variables: Any) -> list[dict]:
    """The system prompt and the rendered ``part`` as a chat."""
    return [{"role": "system", "content": render(role, "system", **variables)},
            {"role": "user", "content": render(role, part, **variables)}]
