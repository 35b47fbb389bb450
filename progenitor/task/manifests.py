"""Dependency manifests: the files that say what gets installed, and whose word they carry.

A candidate that changes one (adds a package to ``requirements.txt``, a build hook to
``setup.py``, an index to a lock file) changes what the next ``progenitor sandbox build``
resolves and builds *on the host*, with the host's network and pip. So:

- the safety review reports every change to a manifest as a ``dependency-change`` finding
  that escalates (``is_manifest`` decides what a manifest is): policy never promotes such a
  candidate alone, a person decides;
- ``progenitor sandbox build`` refuses a directory whose manifest a progenitor candidate
  changed last (``candidate_manifests``), unless a person says they approved it
  (``--approve-dependencies``).

A commit is a candidate's when a candidate ref (``refs/progenitor/<run>/g<gen>/c<k>``)
points at it or it carries a progenitor record (a git note under ``refs/notes/progenitor``):
both travel with the lineage, and the human baseline has neither. An uncommitted change
in the working copy is the person's own.
"""

from __future__ import annotations

import fnmatch
import re
import subprocess
from pathlib import Path, PurePosixPath
from typing import NamedTuple

__all__ = ["MANIFEST_NAMES", "CandidateManifest", "candidate_manifests", "is_manifest"]

MANIFEST_NAMES: tuple[str, ...] = (
    # pip
    "requirements*.txt", "requirements*.in", "*-requirements.txt", "*_requirements.txt", "*.requirements.txt",
    "constraints*.txt", "*-constraints.txt", "pip.conf", "pip.ini",
    # packaging metadata and build hooks (``-e .`` in a requirements file builds them on the host)
    "pyproject.toml", "setup.py", "setup.cfg",
    # pipenv, poetry, uv, pdm, pixi, PEP 751 and any other lock file
    "pipfile", "*.lock", "*-lock.yml", "*-lock.yaml", "*-lock.json", "*.lock.json", "pylock.toml", "pylock.*.toml",
    "poetry.toml", "uv.toml", "pixi.toml",
    # conda
    "environment*.yml", "environment*.yaml", "*environment.yml", "*environment.yaml", ".condarc",
)
"""File names (globs, compared case-insensitively, in any directory) that are dependency manifests."""

_REQUIREMENT_DIRS = ("requirements", "reqs")
"""A ``.txt`` or ``.in`` file inside a directory of one of these names is a manifest too (``requirements/dev.txt``)."""

_CANDIDATE_REF = re.compile(r"^refs/progenitor/[^/]+/g\d+/c\d+$")
_NOTES_REF = "refs/notes/progenitor"


def is_manifest(path: str) -> bool:
    """Is ``path`` (relative, ``/``-separated) a dependency manifest?"""
    parts = [p.casefold() for p in PurePosixPath(path).parts]
    if not parts:
        return False
    name = parts[-1]
    if any(fnmatch.fnmatchcase(name, pattern) for pattern in MANIFEST_NAMES):
        return True
    return len(parts) > 1 and parts[-2] in _REQUIREMENT_DIRS and name.endswith((".txt", ".in"))


class CandidateManifest(NamedTuple):
    path: str
    """The manifest, relative to the directory that was checked."""
    commit: str
    """The candidate commit that changed it last."""
    ref: str
    """That commit's candidate ref (empty when only its git note marks it)."""


def _git(directory: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(directory), *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60)


def candidate_manifests(directory: Path) -> list[CandidateManifest]:
    """Manifests under ``directory`` whose last change is a progenitor candidate's commit.

    Empty when ``directory`` is in no git work tree (nothing tells whose its files are) and
    for a manifest with uncommitted changes (the person at the working copy made them)."""
    directory = Path(directory)
    if _git(directory, "rev-parse", "--is-inside-work-tree").stdout.strip() != "true":
        return []
    listed = _git(directory, "ls-files", "-z", "--", ".").stdout.split("\0")
    manifests = [p for p in listed if p and is_manifest(p)]
    if not manifests:
        return []
    refs = {}
    for line in _git(directory, "for-each-ref", "--format=%(objectname) %(refname)", "refs/progenitor/").stdout.splitlines():
        sha, _, name = line.partition(" ")
        if _CANDIDATE_REF.match(name):
            refs[sha] = name
    dirty = {p for p in _git(directory, "diff", "HEAD", "--name-only", "-z", "--relative", "--", ".").stdout.split("\0") if p}
    found = []
    for path in manifests:
        if path in dirty:
            continue
        sha = _git(directory, "log", "-1", "--format=%H", "--", path).stdout.strip()
        if not sha:
            continue
        if sha in refs or _git(directory, "notes", "--ref", _NOTES_REF, "list", sha).returncode == 0:
            found.append(CandidateManifest(path, sha, refs.get(sha, "")))
    return found
