"""The placeholders of a task's commands (``{data}``, ``{out}``, ``{tree}``), filled in one way
for every command: the sandboxed training and the trusted prepare and scorer.

A placeholder is a name in braces not preceded by ``$``: ``{data}``. Every other brace is
the shell's or the program's own (``awk '{print $1}'``, ``${HOME}``, ``{a,b}``) and is left
as it is; ``{{name}}`` is the way to write a literal ``{name}``. Values are shell-quoted, so
write ``{out}``, not ``"{out}"``. Which placeholders a command may use is fixed per field and
checked when the spec loads, so that a typo (``{ouput}``) is an error naming the field, not a
command that fails after hours of training.
"""

from __future__ import annotations

import difflib
import re
import shlex
from pathlib import Path
from typing import Mapping, Optional, Union

from progenitor.errors import UserError

__all__ = ["ALLOWED", "bind", "check_placeholders", "fill", "placeholders_in"]

_TOKEN = re.compile(r"\{\{([A-Za-z_][A-Za-z0-9_]*)\}\}|(?<!\$)\{([A-Za-z_][A-Za-z0-9_]*)\}")

ALLOWED: dict[str, tuple[str, ...]] = {
    "data.prepare": ("data",),
    "train.command": ("data", "out", "tree", "seed"),
    "scorer.command": ("data", "out", "outputs", "scores"),
    "scorer.test.command": ("data", "out", "outputs", "scores"),
}
"""The placeholders each command field may use."""


def placeholders_in(template: str) -> list[str]:
    """The placeholder names a command uses, in order, each once (escaped ones excluded)."""
    names = [m.group(2) for m in _TOKEN.finditer(template) if m.group(2)]
    return list(dict.fromkeys(names))


def check_placeholders(template: str, allowed: tuple[str, ...]) -> None:
    """Raise ``ValueError`` (one sentence) naming an unknown placeholder and the nearest allowed one."""
    for name in placeholders_in(template):
        if name not in allowed:
            near = difflib.get_close_matches(name, allowed, n=1)
            hint = f" (did you mean {{{near[0]}}}?)" if near else ""
            raise ValueError(
                f"unknown placeholder {{{name}}}{hint}; this command may use "
                f"{', '.join('{' + a + '}' for a in allowed)}; write {{{{{name}}}}} for a literal {{{name}}}"
            )


def fill(template: str, values: Mapping[str, Optional[Union[str, Path]]], what: str = "the command") -> str:
    """The command with each placeholder replaced by its shell-quoted value.

    A placeholder whose value is None (a sandbox given no data directory) or that ``values``
    does not know is a ``UserError`` naming ``what``."""

    def replace(match: re.Match) -> str:
        if match.group(1):
            return "{" + match.group(1) + "}"
        name = match.group(2)
        value = values.get(name)
        if value is None:
            known = ", ".join("{" + k + "}" for k, v in values.items() if v is not None)
            raise UserError(f"{what} uses {{{name}}}, which has no value here (it may use {known or 'none'})")
        return shlex.quote(str(value))

    return _TOKEN.sub(replace, template)


def bind(template: str, name: str, value: Union[str, int]) -> str:
    """The command with placeholder ``name`` filled in (shell-quoted) and every other one kept,
    for a value known before the paths are (the training's ``{seed}``)."""

    def replace(match: re.Match) -> str:
        return shlex.quote(str(value)) if match.group(2) == name else match.group(0)

    return _TOKEN.sub(replace, template)
