"""Walking and removing a tree whose shape a candidate chose: iteratively, never through a link,
and within bounds on depth, path length and entries.

A committed file 1,200 directories deep took the driver down: ``os.walk``, ``Path.rglob`` and
``shutil.rmtree`` recurse once per directory level (in the Python versions progenitor supports),
so a deep enough tree is a ``RecursionError`` in the review, the agents' view, the sandbox
hand-over and the checks; a path longer than the host allows is an ``ENAMETOOLONG`` wherever it
is touched by name. Every walk of such a tree is ``walk`` (a stack, not recursion), every
removal ``remove_tree`` (directories are moved up to the top before they are emptied, so it
needs neither recursion nor long paths nor one descriptor per level), and every path a
candidate names is held to ``Bounds`` (``refusal`` says why one is not).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path
from typing import Iterator, NamedTuple, Optional, Union

from pydantic import BaseModel, ConfigDict

from progenitor.boundary.display import has_control, shown
from progenitor.errors import CandidateDataError

__all__ = ["Bounds", "Entry", "TREE", "refusal", "remove_tree", "walk"]

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC


class Bounds(BaseModel):
    """How far a candidate's tree (or its outputs) may go."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    depth: int = 64
    """Most directories a path may go down (``a/b/c.py`` is 3 deep)."""
    path_bytes: int = 1024
    """Longest relative path, in UTF-8 bytes: with the directory it lives in, far under the
    host's 4096 (``PATH_MAX``), so no path is ever too long to open by name."""
    name_bytes: int = 255
    """Longest component (the host's ``NAME_MAX``)."""
    entries: int = 200_000
    """Most files and directories."""
    control: bool = True
    """Whether a name may hold control characters (False for outputs: they are refused)."""


TREE = Bounds()
"""The bounds of a committed tree and of a tree walk."""


def refusal(rel: str, bounds: Bounds = TREE) -> Optional[str]:
    """Why the relative path ``rel`` is beyond ``bounds`` (one phrase), or None."""
    parts = [p for p in rel.split("/") if p]
    size = len(rel.encode("utf-8", "surrogateescape"))
    if len(parts) > bounds.depth:
        return f"a path {len(parts)} levels deep (at most {bounds.depth})"
    if size > bounds.path_bytes:
        return f"a path of {size} bytes (at most {bounds.path_bytes})"
    longest = max((len(p.encode("utf-8", "surrogateescape")) for p in parts), default=0)
    if longest > bounds.name_bytes:
        return f"a name of {longest} bytes (at most {bounds.name_bytes})"
    if not bounds.control and has_control(rel):
        return f"a name with control characters ({shown(rel)[:120]})"
    return None


class Entry(NamedTuple):
    """One thing below the top of a walk."""

    rel: str
    """Its path below the top, ``/``-separated."""
    path: str
    """Its path on the host (the top joined with ``rel``)."""
    st: os.stat_result
    """Its ``lstat``: a link is a link, never what it points to."""

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.st.st_mode)


def walk(top: Union[str, Path], bounds: Bounds = TREE, refused: Optional[list[str]] = None,
         skip: tuple[str, ...] = ()) -> Iterator[Entry]:
    """Every entry below ``top`` (depth first, a directory before what it holds), links not
    followed, directories named in ``skip`` not entered.

    An entry beyond ``bounds`` is not yielded (nor, for a directory, entered): it is appended to
    ``refused`` (as ``"rel: why"``) when a list is given, else the walk raises
    ``CandidateDataError``. An unreadable directory is passed over. The walk holds one open
    directory at a time, whatever the depth."""
    top = os.fspath(top)
    stack = [""]
    seen = 0
    while stack:
        rel_dir = stack.pop()
        try:
            with os.scandir(os.path.join(top, rel_dir) if rel_dir else top) as it:
                entries = []
                for item in it:
                    seen += 1
                    if seen > bounds.entries:
                        _refuse(refused, rel_dir or ".", f"more than {bounds.entries} entries")
                        return
                    entries.append(item)
        except OSError:
            continue
        below = []
        for item in sorted(entries, key=lambda e: e.name):
            rel = f"{rel_dir}/{item.name}" if rel_dir else item.name
            why = refusal(rel, bounds)
            if why:
                _refuse(refused, rel, why)
                continue
            try:
                st = item.stat(follow_symlinks=False)
            except OSError:
                continue
            yield Entry(rel, item.path, st)
            if stat.S_ISDIR(st.st_mode) and item.name not in skip:
                below.append(rel)
        stack.extend(reversed(below))


def _refuse(refused: Optional[list[str]], rel: str, why: str) -> None:
    if refused is None:
        raise CandidateDataError(f"{why} ({shown(rel)[:200]})")
    if len(refused) < 100:
        refused.append(f"{shown(rel)[:200]}: {why}")


def remove_tree(path: Union[str, Path]) -> None:
    """Remove ``path`` and everything below it, whatever the depth, the names' lengths or the
    modes a candidate left (a directory it made 0000 included); a link is removed, never
    followed. Nothing outside ``path`` is touched."""
    path = os.fspath(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return
    with contextlib.suppress(OSError):
        os.chmod(path, 0o700)
    top = os.open(path, _DIR_FLAGS)
    try:
        _empty(top)
    finally:
        os.close(top)
    os.rmdir(path)


def _empty(top: int) -> None:
    """Empty the directory open at ``top``: each subdirectory's own subdirectories are moved up
    into ``top`` (under fresh names) before it is emptied of its files and removed."""
    while True:
        with os.scandir(top) as it:
            names = [entry.name for entry in it]
        if not names:
            return
        for name in names:
            _remove_one(top, name)


def _remove_one(top: int, name: str) -> None:
    try:
        st = os.stat(name, dir_fd=top, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=top)
        return
    with contextlib.suppress(OSError):
        os.chmod(name, 0o700, dir_fd=top)  # not a link (lstat above): chmod may follow nothing
    fd = os.open(name, _DIR_FLAGS, dir_fd=top)
    try:
        with os.scandir(fd) as it:
            children = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in it]
        for child, is_dir in children:
            if is_dir:
                with contextlib.suppress(OSError):
                    os.chmod(child, 0o700, dir_fd=fd)  # moving a directory rewrites its '..'
                os.rename(child, f".rm-{secrets.token_hex(8)}", src_dir_fd=fd, dst_dir_fd=top)
            else:
                os.unlink(child, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=top)
