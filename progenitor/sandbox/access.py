"""Host-side file access, for both backends: when we are root the command runs as another
uid, so its writable directories are handed to that uid and its data is made readable."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Callable, Optional

from progenitor.boundary.walk import Bounds, walk

__all__ = ["grant_read", "hand_over", "is_root", "unreachable_parent"]


def is_root() -> bool:
    return os.geteuid() == 0


def hand_over(paths: list[Path], uid: int, gid: int) -> None:
    """Make the command's writable directories its own (recursively, links not followed)."""
    for top in paths:
        _walk(top, lambda path: os.lchown(path, uid, gid))


def grant_read(top: Path) -> None:
    """Let any uid read ``top`` (data: what the command is meant to read): add o+r, and o+x
    to directories and to files executable by their owner. Only missing bits are added;
    links are not followed."""
    _walk(top, _add_read)


def unreachable_parent(path: Path, uid: int) -> Optional[Path]:
    """The first directory above ``path`` that ``uid`` cannot enter, if any (plain mode:
    the command sees the host's real directories and their permissions)."""
    for parent in reversed(path.parents):
        st = parent.stat()
        if st.st_uid != uid and not st.st_mode & stat.S_IXOTH:
            return parent
    return None


def _walk(top: Path, action: Callable[[str], None]) -> None:
    """``action`` on ``top`` and, if it is a directory (not a link to one), on all below it
    (``boundary.walk``: iterative, links not followed, a tree beyond its bounds refused)."""
    action(str(top))
    if os.path.isdir(top) and not os.path.islink(top):
        for entry in walk(top, Bounds(entries=10_000_000)):
            action(entry.path)


def _add_read(path: str) -> None:
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        return
    want = stat.S_IROTH
    if stat.S_ISDIR(st.st_mode) or st.st_mode & stat.S_IXUSR:
        want |= stat.S_IXOTH
    if st.st_mode & want != want:
        os.chmod(path, stat.S_IMODE(st.st_mode) | want)
