"""The constitution: machine-checkable rules every generation inherits.

It is a YAML file in the model repo, named by ``safety.constitution`` in ``progenitor.yaml``
and protected like the spec. A candidate is always judged by the constitution of the base
commit it descends from, never by its own copy, so it cannot relax the rules it is judged
by; a candidate that edits the constitution needs a human decision (see ``reviewer``).
When a task names no constitution, the packaged default (``templates/constitution.yaml``)
applies, so that every run gets the same floor of rules.

The rules are a first line of defence that catches honest mistakes and naive attacks
before any code runs; the sandbox stays the boundary that holds when a rule is evaded.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator

from progenitor.errors import UserError
from progenitor.task.spec import Severity, load_yaml, parse_size
from progenitor.task.validation import validate_file

_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_DOTTED_GLOB = re.compile(r"^[A-Za-z_*?\[][A-Za-z0-9_.*?\[\]!-]*$")


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    severity: Severity = "critical"
    """How bad breaking this rule is (info, low, medium, high, critical)."""
    reason: str = ""
    """Why the rule exists; quoted in the finding so the coder (or a person) understands it."""


class ImportRule(_Rule):
    modules: list[str] = Field(min_length=1)
    """Top-level or dotted module names; ``urllib`` also forbids ``urllib.request``."""

    @field_validator("modules")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        for name in v:
            if not _DOTTED.match(name):
                raise ValueError(f"{name!r} is not a module name like socket or urllib.request")
        return v


class CallRule(_Rule):
    calls: list[str] = Field(min_length=1)
    """Dotted names of callables (``eval``, ``os.system``); ``*`` and ``?`` glob, and ``*`` spans dots."""

    @field_validator("calls")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        for name in v:
            if not _DOTTED_GLOB.match(name):
                raise ValueError(f"{name!r} is not a dotted name like eval, os.system or os.exec*")
        return v


class FileRule(_Rule):
    patterns: list[str] = Field(min_length=1)
    """Globs, matched case-insensitively; one without ``/`` matches any path component
    (``*.so``, ``.git*``), one with ``/`` the whole path."""


class TextRule(_Rule):
    strings: list[str] = Field(min_length=1)
    """Literal, case-sensitive text that may not appear in any changed file (e.g. a hidden file's name)."""


class AbsolutePathRule(_Rule):
    allow: list[str] = ["/dev/null", "/dev/stdout", "/dev/stderr"]
    """Absolute paths (globs) candidate code may still name; every other one is a finding."""


class DiffLimit(_Rule):
    severity: Severity = "high"
    lines: Optional[int] = Field(None, ge=1)
    """Most lines added plus removed over the whole candidate."""
    files: Optional[int] = Field(None, ge=1)
    """Most files added, changed, renamed or deleted."""
    bytes: Optional[str] = None
    """Most bytes of new file content (``500k``, ``2m``): bounds binary blobs that have no lines."""

    @field_validator("bytes")
    @classmethod
    def _size(cls, v: Optional[str]) -> Optional[str]:
        if v is not None:
            parse_size(v)
        return v

    @property
    def max_bytes(self) -> Optional[int]:
        return None if self.bytes is None else parse_size(self.bytes)


class RequiredGuards(_Rule):
    severity: Severity = "high"
    metrics: list[str] = Field(min_length=1)
    """Metric names that ``progenitor.yaml`` must guard (``guards:``) for any candidate to run."""


DEFAULT_ALLOWED_MODULES: tuple[str, ...] = (
    "__future__", "abc", "argparse", "array", "base64", "binascii", "bisect", "bz2", "calendar", "cmath",
    "codecs", "collections", "contextlib", "copy", "csv", "dataclasses", "datetime", "decimal", "difflib",
    "enum", "errno", "fnmatch", "fractions", "functools", "glob", "gzip", "hashlib", "heapq", "io",
    "itertools", "json", "logging", "lzma", "math", "numbers", "operator", "os", "pathlib", "pprint",
    "queue", "random", "re", "shutil", "stat", "statistics", "string", "struct", "sys", "tempfile",
    "textwrap", "threading", "time", "types", "typing", "typing_extensions", "unicodedata", "warnings",
    "weakref", "zipfile", "zlib",
)
"""The standard library a training script uses to compute, parse and write files: what a
candidate may import even when the base does not (``allowed_imports.modules``)."""


class AllowedImports(_Rule):
    """What candidate code may import; every other import is an ``unlisted-import`` finding."""

    severity: Severity = "high"
    modules: list[str] = list(DEFAULT_ALLOWED_MODULES)
    """Modules (dotted names, ``*`` globs) a candidate may import, each with its submodules."""
    from_base: bool = True
    """Also every top-level module the base commit's own Python files import."""
    from_requirements: bool = True
    """Also the libraries the base declares (``requirements.txt``, ``pyproject.toml``'s dependencies)."""

    @field_validator("modules")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        for name in v:
            if not _DOTTED_GLOB.match(name):
                raise ValueError(f"{name!r} is not a module name like math, torch or torch.nn")
        return v


class NameAccess(_Rule):
    """How candidate code may reach a name: by an import and attributes written out. Everything
    else is a finding (``dunder``, ``private-name``, ``module-value``, ``computed-name``,
    ``import-state``; see ``progenitor.agents.safety.reach``)."""

    severity: Severity = "high"
    allow: list[str] = []
    """Names these rules let through anyway: an attribute (``__class__``, ``_orig_mod``) or a
    dotted name and what is inside it (``torch._dynamo``)."""

    @field_validator("allow")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        for name in v:
            if not _DOTTED.match(name):
                raise ValueError(f"{name!r} is not a name like __class__ or torch._dynamo")
        return v


class Constitution(BaseModel):
    """The machine-checkable rules, plus the principles an LLM reviewer applies to every diff."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(1, ge=1, le=1)
    """Format version of this file (only 1 exists)."""
    allowed_imports: Optional[AllowedImports] = AllowedImports()
    """What candidate code may import (the allow-list); ``null`` turns the rule off."""
    name_access: Optional[NameAccess] = NameAccess()
    """How candidate code may reach names (dunders, private names, modules as values, names
    computed at run time handed to a resolver); ``null`` turns the rules off."""
    forbidden_imports: list[ImportRule] = []
    """Modules candidate code may not import (statically, or by a literal dynamic import), even
    when they are on the allow-list."""
    forbidden_calls: list[CallRule] = []
    """Callables candidate code may not call or even name (aliases and getattr are resolved)."""
    dynamic_imports: Optional[_Rule] = None
    """``__import__`` / ``importlib.import_module`` with a name computed at run time (unset: allowed)."""
    absolute_paths: Optional[AbsolutePathRule] = None
    """Absolute path literals in candidate code: it gets its data and outputs as arguments (unset: allowed)."""
    forbidden_files: list[FileRule] = []
    """Files a candidate may not add or change (native code, ``.git*``, bytecode)."""
    symlinks: Optional[_Rule] = None
    """The reason quoted when a candidate adds a symbolic link. The check itself is built in and
    always critical, set or not (the host never follows a link; see ``file_check``)."""
    forbidden_text: list[TextRule] = []
    """Text that may not appear in any changed file."""
    max_diff: Optional[DiffLimit] = None
    """Most a candidate may change at once."""
    required_guards: Optional[RequiredGuards] = None
    """Guard metrics the task must declare."""
    principles: list[str] = []
    """Plain-language principles: the LLM reviewer (``agents.reviewers: [llm]``) judges every
    diff against them; without it they are recorded with the task, not checked."""


DEFAULT_TEMPLATE = "constitution.yaml"


def default_constitution_text() -> str:
    """The packaged default constitution (what ``progenitor init`` writes)."""
    return resources.files("progenitor.task").joinpath("templates", DEFAULT_TEMPLATE).read_text(encoding="utf-8")


def parse_constitution(text: str, source: str) -> Constitution:
    """Validate constitution text; a problem is one ``UserError`` naming ``source`` and the field."""
    data = load_yaml(text, source, UserError)
    return validate_file(Constitution, {} if data is None else data, source, UserError, of="rules")


@lru_cache(maxsize=1)
def default_constitution() -> Constitution:
    """The packaged default, parsed once (a ``Constitution`` is frozen)."""
    return parse_constitution(default_constitution_text(), f"(default) {DEFAULT_TEMPLATE}")


def load_constitution(base_tree: Union[str, Path], name: Optional[str]) -> Constitution:
    """The constitution of the trusted base tree (``name`` from the base spec), or the default."""
    if not name:
        return default_constitution()
    root = Path(base_tree).resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root):
        raise UserError(f"progenitor.yaml: field 'safety.constitution' ({name!r}) points outside the repository")
    if not path.is_file():
        raise UserError(
            f"{name}: the constitution named by progenitor.yaml's 'safety.constitution' is not in the base "
            "commit; add it or remove the field"
        )
    return parse_constitution(path.read_text(encoding="utf-8"), name)
