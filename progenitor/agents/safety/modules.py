"""Is a dotted name a module? Worked out from the files the host's Python would import, without
importing anything.

The review needs it for one rule: a module may be reached by its dotted name, never carried
around as a value (``p = os.path`` then ``p.os.system``), because a value hides every later
name from the review. ``import x`` says that ``x`` is a module; ``from torch import nn`` or a
dotted name such as ``os.path`` does not, so this module looks: the top-level name through
``importlib.util.find_spec`` (which, for a top-level name, only searches the import path and
runs no module code), then each later component as a file or directory under the package.

A library the host does not have is unknown (``False``): the rule then cannot fire on its
submodules, and the sandbox remains the boundary, as for everything this review misses.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
from functools import lru_cache
from typing import Optional

ALIASED = {"os.path"}
"""Modules that are another module under a second name (``os.path`` is ``posixpath``)."""
_SUFFIXES = tuple(importlib.machinery.all_suffixes())


def _locations(top: str) -> Optional[list[str]]:
    """The directories of package ``top`` ([] for a plain module, None: not a module)."""
    if not top.isidentifier():
        return None
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError, AttributeError):  # a broken finder or a module without a spec
        return None
    if spec is None:
        return None
    return list(spec.submodule_search_locations or [])


def _child(locations: list[str], name: str) -> Optional[list[str]]:
    """The directories of submodule ``name`` of a package at ``locations`` ([] for a plain
    module, None: no such submodule)."""
    for place in locations:
        package = os.path.join(place, name)
        if os.path.isdir(package):
            return [package]
        if any(os.path.isfile(package + suffix) for suffix in _SUFFIXES):
            return []
        try:
            entries = os.listdir(place)
        except OSError:
            continue
        if any(entry.startswith(name + ".") and entry.endswith(_SUFFIXES) for entry in entries):
            return []  # an extension module: name.cpython-311-x86_64-linux-gnu.so
    return None


@lru_cache(maxsize=4096)
def is_module(dotted: str) -> bool:
    """Would ``import dotted`` find a module on this host (``os``, ``os.path``, ``torch.nn``)?"""
    if dotted in ALIASED:
        return True
    parts = dotted.split(".")
    locations = _locations(parts[0])
    for part in parts[1:]:
        if not locations or not part.isidentifier():
            return False
        locations = _child(locations, part)
    return locations is not None
