"""Is a dotted name a module? Worked out from the files the host's Python would import, without
importing anything.

The review needs it for one rule: a module may be reached by its dotted name, never carried
around as a value (``p = os.path`` then ``p.os.system``), because a value hides every later
name from the review. ``import x`` says that ``x`` is a module; ``from torch import nn`` or a
dotted name such as ``shutil.os`` does not, so this module looks: the top-level name through
``importlib.util.find_spec`` (which, for a top-level name, only searches the import path and
runs no module code), then each later component as a file or directory under the package,
or as a name the parent's source binds with an import statement (``shutil`` does
``import os``, so ``shutil.os`` is a module): the source is parsed, never run.

A library the host does not have is unknown (``False``): the rule then cannot fire on its
submodules, and the sandbox remains the boundary, as for everything this review misses.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import os
from functools import lru_cache
from typing import Optional

ALIASED = {"os.path"}
"""Modules that are another module under a second name (``os.path`` is ``posixpath``)."""
_SUFFIXES = tuple(importlib.machinery.all_suffixes())
_MAX_SOURCE = 4 << 20
"""A module's source is read this far for the names it imports."""


def _top(top: str) -> Optional[tuple[Optional[str], list[str]]]:
    """(source file or None, package directories or []) of top-level module ``top``; None: no module."""
    if not top.isidentifier():
        return None
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError, AttributeError):  # a broken finder or a module without a spec
        return None
    if spec is None:
        return None
    origin = spec.origin if spec.origin and spec.origin.endswith(".py") else None
    return origin, list(spec.submodule_search_locations or [])


def _child(locations: list[str], name: str) -> Optional[tuple[Optional[str], list[str]]]:
    """(source file or None, package directories or []) of submodule ``name`` of a package at
    ``locations``; None: no such submodule."""
    for place in locations:
        package = os.path.join(place, name)
        if os.path.isdir(package):
            init = os.path.join(package, "__init__.py")
            return (init if os.path.isfile(init) else None), [package]
        if os.path.isfile(package + ".py"):
            return package + ".py", []
        if any(os.path.isfile(package + suffix) for suffix in _SUFFIXES):
            return None, []
        try:
            entries = os.listdir(place)
        except OSError:
            continue
        if any(entry.startswith(name + ".") and entry.endswith(_SUFFIXES) for entry in entries):
            return None, []  # an extension module: name.cpython-311-x86_64-linux-gnu.so
    return None


@lru_cache(maxsize=4096)
def _find(dotted: str) -> Optional[tuple[Optional[str], list[str]]]:
    """(source file or None, package directories) of the module file ``dotted`` names; None: not a file."""
    parent, _, last = dotted.rpartition(".")
    if not parent:
        return _top(dotted)
    found = _find(parent)
    if found is None or not found[1] or not last.isidentifier():
        return None
    return _child(found[1], last)


@lru_cache(maxsize=1024)
def _imported_names(dotted: str) -> dict[str, str]:
    """What the source of module ``dotted`` binds at its top level by an import statement
    (also under a top-level ``if`` or ``try``): local name -> the dotted name it imports."""
    found = _find(dotted)
    if found is None or found[0] is None:
        return {}
    try:
        with open(found[0], "rb") as f:
            tree = ast.parse(f.read(_MAX_SOURCE))
    except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):
        return {}
    package = dotted if found[0].endswith("__init__.py") else dotted.rpartition(".")[0]
    bound: dict[str, str] = {}
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.If, ast.Try)):
            todo += [*node.body, *node.orelse, *getattr(node, "finalbody", []),
                     *(s for h in getattr(node, "handlers", []) for s in h.body)]
        elif isinstance(node, ast.Import):
            for a in node.names:
                bound[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], *filter(None, [base])])
            for a in node.names:
                if a.name != "*":
                    bound[a.asname or a.name] = f"{base}.{a.name}"
    return bound


@lru_cache(maxsize=4096)
def is_module(dotted: str, _depth: int = 0) -> bool:
    """Does ``dotted`` name a module on this host: a module file (``os``, ``torch.nn``), or a
    module another one re-exports by importing it (``shutil.os``, ``os.path``)?"""
    if dotted in ALIASED or _find(dotted) is not None:
        return True
    parent, _, last = dotted.rpartition(".")
    if not parent or _depth > 8 or not is_module(parent, _depth + 1):
        return False
    target = _imported_names(parent).get(last)
    return target is not None and target != dotted and is_module(target, _depth + 1)
