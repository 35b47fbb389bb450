"""The import allow-list: the modules candidate code may import. Every other import is a finding.

A deny-list names what is dangerous and loses to the next spelling; an allow-list names what
is needed. What a training script needs is known before any candidate exists:

- the constitution's ``allowed_imports.modules`` (by default the part of the standard library
  a training script computes, parses and writes files with: ``DEFAULT_ALLOWED_MODULES``);
- every top-level module the base commit's own Python files import (``from_base``): the human
  baseline already runs them;
- the libraries the base declares (``from_requirements``): ``requirements.txt`` and
  ``pyproject.toml``'s ``[project] dependencies``, each distribution by the names it is
  imported under (``scikit-learn`` is ``sklearn``), read from the host's installed metadata
  and, for a library the host does not have, from its normalised name;
- the candidate's own modules: files and packages beside the importing file or at the tree's
  root (they are reviewed too when the candidate changes them).

An entry allows a module and its submodules (``torch`` allows ``torch.nn``). The
constitution's ``forbidden_imports`` still apply inside the allow-list (``torch.multiprocessing``).
Everything here reads files; nothing is imported or run.
"""

from __future__ import annotations

import ast
import fnmatch
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Optional

from progenitor.boundary import tree_files
from progenitor.errors import UnsafePathError
from progenitor.task.config_files import tomllib
from progenitor.task.constitution import Constitution

MAX_FILES = 5000
"""Python files of the base read for its imports (a larger tree is read this far)."""
MAX_BYTES = 2 << 20
"""A larger file of the base is not read for its imports."""
_SKIP_DIRS = {"__pycache__", "node_modules", "site-packages"}
KNOWN_IMPORT_NAMES = {
    "scikit-learn": ["sklearn"], "pyyaml": ["yaml"], "pillow": ["PIL"], "opencv-python": ["cv2"],
    "opencv-python-headless": ["cv2"], "beautifulsoup4": ["bs4"], "python-dateutil": ["dateutil"],
    "protobuf": ["google"], "scikit-image": ["skimage"], "attrs": ["attr", "attrs"], "faiss-cpu": ["faiss"],
    "faiss-gpu": ["faiss"], "pytorch-lightning": ["pytorch_lightning"], "tensorflow-cpu": ["tensorflow"],
}
"""Distributions imported under another name, for when the host does not have them installed."""


@dataclass(frozen=True)
class AllowList:
    """Modules (dotted names or globs) that may be imported, each with its submodules."""

    entries: frozenset[str]

    def allows(self, module: str) -> bool:
        """Is ``module`` (dotted) an entry, inside one, or matched by a glob entry?"""
        parts = module.split(".")
        prefixes = [".".join(parts[: i + 1]) for i in range(len(parts))]
        if any(p in self.entries for p in prefixes):
            return True
        globs = [e for e in self.entries if any(ch in e for ch in "*?[")]
        return any(fnmatch.fnmatchcase(p, g) for g in globs for p in prefixes)

    def with_local(self, names: set[str]) -> "AllowList":
        return AllowList(self.entries | frozenset(names))


def python_files(tree: Path, limit: int = MAX_FILES) -> Iterator[str]:
    """Relative paths of the regular ``.py`` files under ``tree``, found without recursion and
    without following a link; hidden directories are skipped."""
    stack = [""]
    found = 0
    while stack and found < limit:
        rel = stack.pop()
        try:
            with os.scandir(tree / rel if rel else tree) as entries:
                listed = sorted(entries, key=lambda e: e.name)
        except OSError:
            continue
        for entry in listed:
            path = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_dir(follow_symlinks=False):
                if not entry.name.startswith(".") and entry.name not in _SKIP_DIRS:
                    stack.append(path)
            elif entry.name.endswith(".py") and entry.is_file(follow_symlinks=False) and found < limit:
                found += 1
                yield path


def imported_modules(source: bytes) -> set[str]:
    """The top-level names of the modules a file imports absolutely (empty if it does not parse)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def base_imports(tree: Path) -> set[str]:
    names: set[str] = set()
    for rel in python_files(tree):
        path = tree / rel
        try:
            if path.stat().st_size <= MAX_BYTES:
                names |= imported_modules(path.read_bytes())
        except OSError:
            continue
    return names


@lru_cache(maxsize=1)
def _installed() -> dict[str, list[str]]:
    """Normalised distribution name -> the top-level names it is imported under, on this host."""
    from importlib.metadata import packages_distributions

    by_dist: dict[str, list[str]] = {}
    for module, dists in packages_distributions().items():
        for dist in dists:
            by_dist.setdefault(_normalise(dist), []).append(module)
    return by_dist


def _normalise(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def import_names(dist: str) -> set[str]:
    """The top-level modules distribution ``dist`` is imported under."""
    key = _normalise(dist)
    installed = [m for m in _installed().get(key, []) if m.isidentifier()]
    return set(installed or KNOWN_IMPORT_NAMES.get(key, [key.replace("-", "_")]))


def _requirement_names(lines: list[str]) -> set[str]:
    from packaging.requirements import InvalidRequirement, Requirement

    names = set()
    for line in lines:
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        try:
            names.add(Requirement(line).name)
        except InvalidRequirement:
            continue
    return names


def declared_dists(tree: Path) -> set[str]:
    """The distributions the base's ``requirements.txt`` and ``pyproject.toml`` declare."""
    dists: set[str] = set()
    req = tree / "requirements.txt"
    if req.is_file() and not req.is_symlink():
        dists |= _requirement_names(req.read_text(encoding="utf-8", errors="replace").splitlines())
    project = tree / "pyproject.toml"
    if project.is_file() and not project.is_symlink():
        try:
            data = tomllib.loads(project.read_text(encoding="utf-8", errors="replace"))
        except tomllib.TOMLDecodeError:
            data = {}
        deps = (data.get("project") or {}).get("dependencies") or []
        dists |= _requirement_names([d for d in deps if isinstance(d, str)])
    return dists


def _fingerprint(tree: Path) -> tuple:
    """What the allow-list of ``tree`` depends on, cheaply: the files' names, sizes and times."""
    marks = []
    for rel in [*python_files(tree), "requirements.txt", "pyproject.toml"]:
        try:
            st = (tree / rel).stat()
        except OSError:
            continue
        marks.append((rel, st.st_size, st.st_mtime_ns))
    return tuple(marks)


@lru_cache(maxsize=16)
def _base_entries(tree: str, from_base: bool, from_requirements: bool, fingerprint: tuple) -> frozenset[str]:
    root = Path(tree)
    names = base_imports(root) if from_base else set()
    if from_requirements:
        for dist in declared_dists(root):
            names |= import_names(dist)
    return frozenset(names)


def allow_list(constitution: Constitution, base_tree: Path) -> Optional[AllowList]:
    """The allow-list the base commit gives, or None when the constitution turns it off."""
    rule = constitution.allowed_imports
    if rule is None:
        return None
    base = Path(base_tree).resolve()
    found = _base_entries(str(base), rule.from_base, rule.from_requirements, _fingerprint(base))
    return AllowList(frozenset(rule.modules) | found)


def local_modules(tree: Path, rel_dir: str) -> set[str]:
    """The modules a file in ``rel_dir`` can import from the candidate's own tree: files and
    packages at the root and beside it (a linked entry is not one)."""
    names = set()
    for rel in {"", rel_dir}:
        try:
            if rel and tree_files.kind(tree, rel) != "dir":
                continue
        except UnsafePathError:
            continue
        where = Path(tree) / rel if rel else Path(tree)
        try:
            with os.scandir(where) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        names.add(entry.name)
                    elif entry.name.endswith(".py") and entry.is_file(follow_symlinks=False):
                        names.add(entry.name[:-3])
        except OSError:
            continue
    return {n for n in names if n.isidentifier()}
