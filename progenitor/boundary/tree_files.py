"""Host-side file access inside a tree whose content a candidate chose: never through a link,
never outside the tree, never into git's own files.

The coder, the config writer and the reviewer run on the host as the driver's user, on
trees a candidate (or the champion it was built on) committed. A plain ``open(tree / rel)``
follows a link anywhere - once onto the user's own ``progenitor.yaml`` - so every host-side
read or write of such a tree goes through this module:

- ``rel`` is checked first (``parts``): relative, no ``..``, no NUL byte, and no component
  git would take for its own directory (``is_git_name``: ``.git`` in any case and its
  Windows and macOS aliases);
- the path is walked one component at a time from a descriptor of the tree's root, each
  component opened with ``O_NOFOLLOW`` relative to the one before (``dir_fd``): every
  directory on the way must be a real directory and the last component a regular file, so
  a linked file and a linked parent directory are both refused, and there is no moment
  between a check and the open in which a link swapped in would be followed (Python has
  no ``openat2(RESOLVE_BENEATH)``; this walk gives the same guarantee);
- a write goes into a new file in the same directory, renamed over the old name: the old
  inode, which a hard link may share with a file elsewhere, is never written into.

A refusal is an ``UnsafePathError`` (a ``CandidateError``: the candidate fails, the run goes on).
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional, Union

from progenitor.errors import UnsafePathError

__all__ = ["git_component", "is_git_name", "kind", "parts", "read_bytes", "read_text", "remove",
           "write_bytes", "write_text"]

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
# Code points macOS drops when it compares names (so ".g\u200cit" is ".git" there).
_IGNORABLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u206a-\u206f\ufeff]")
_SHORT_NAME = re.compile(r"git~\d+")


def is_git_name(name: str) -> bool:
    """Would git, on some platform, take this one path component for its own ``.git``?

    ``.git`` in any case (``.GIT``, ``.Git``); with the trailing dots and spaces and the
    ``:stream`` suffix Windows drops (``.git.``, ``.git ``, ``.git::$INDEX_ALLOCATION``); its
    8.3 short name (``GIT~1``); with the code points macOS ignores (``.g\\u200cit``). Git
    itself refuses the first three kinds on every platform; a lineage travels with
    ``git push``, so the others are refused too."""
    base = _IGNORABLE.sub("", name).split(":", 1)[0].rstrip(" .").casefold()
    return base == ".git" or _SHORT_NAME.fullmatch(base) is not None


def git_component(path: str) -> Optional[str]:
    """The first component of ``path`` (``/`` or ``\\`` separated) that is git's own, or None."""
    return next((part for part in re.split(r"[/\\]", path) if is_git_name(part)), None)


def parts(rel: str) -> list[str]:
    """The components of a tree-relative path, or ``UnsafePathError`` saying why it may not be used."""
    if not isinstance(rel, str) or not rel.strip("/."):
        raise UnsafePathError(f"{rel!r} names no file in the tree")
    if "\0" in rel:
        raise UnsafePathError(f"{rel!r} holds a NUL byte")
    if rel.startswith(("/", "\\")):
        raise UnsafePathError(f"{rel!r} is an absolute path, outside the tree")
    names = [p for p in rel.split("/") if p not in ("", ".")]
    if ".." in names:
        raise UnsafePathError(f"{rel!r} climbs out of the tree with '..'")
    git = next((p for p in names if is_git_name(p)), None)
    if git is not None:
        raise UnsafePathError(f"{rel!r} is inside git's own files ({git!r})")
    return names


def _refuse_link(dir_fd: int, name: str, rel: str, exc: OSError) -> None:
    """Turn an open that failed on a link into an UnsafePathError; re-raise any other failure."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        raise exc from None
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePathError(f"{rel!r} goes through the symbolic link {name!r}; progenitor never follows "
                              "a link in a candidate's tree") from None
    raise exc


@contextmanager
def _parent(root: Union[str, Path], names: list[str], rel: str, create: bool) -> Iterator[int]:
    """A descriptor of the directory that holds the last component, reached link-free from ``root``."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
    try:
        for name in names[:-1]:
            try:
                child = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(name, 0o755, dir_fd=fd)
                child = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                _refuse_link(fd, name, rel, exc)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def _lstat(dir_fd: int, name: str) -> Optional[os.stat_result]:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _only_regular(st: Optional[os.stat_result], name: str, rel: str) -> None:
    if st is None or stat.S_ISREG(st.st_mode):
        return
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePathError(f"{rel!r} is a symbolic link; progenitor never follows a link in a candidate's tree")
    raise UnsafePathError(f"{rel!r} is not a regular file")


def kind(root: Union[str, Path], rel: str) -> Optional[str]:
    """``file``, ``dir``, ``link`` or ``other`` for what ``rel`` names (no link followed), None if nothing."""
    names = parts(rel)
    try:
        with _parent(root, names, rel, create=False) as dir_fd:
            st = _lstat(dir_fd, names[-1])
    except (FileNotFoundError, NotADirectoryError):
        return None
    except UnsafePathError:
        return "link"
    if st is None:
        return None
    if stat.S_ISLNK(st.st_mode):
        return "link"
    return "file" if stat.S_ISREG(st.st_mode) else "dir" if stat.S_ISDIR(st.st_mode) else "other"


def read_bytes(root: Union[str, Path], rel: str, limit: Optional[int] = None) -> bytes:
    """The content of the regular file ``rel`` (at most ``limit`` bytes, then ``UnsafePathError``)."""
    names = parts(rel)
    with _parent(root, names, rel, create=False) as dir_fd:
        try:
            fd = os.open(names[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC, dir_fd=dir_fd)
        except OSError as exc:
            _refuse_link(dir_fd, names[-1], rel, exc)
    with os.fdopen(fd, "rb") as handle:
        _only_regular(os.fstat(handle.fileno()), names[-1], rel)
        data = handle.read() if limit is None else handle.read(limit + 1)
    if limit is not None and len(data) > limit:
        raise UnsafePathError(f"{rel!r} is larger than {limit} bytes")
    return data


def read_text(root: Union[str, Path], rel: str, limit: Optional[int] = None) -> str:
    return read_bytes(root, rel, limit).decode("utf-8")


def write_bytes(root: Union[str, Path], rel: str, data: bytes) -> None:
    """Create or replace the regular file ``rel`` (missing directories are made, link-free).

    The new content goes into a fresh file renamed over the old name, which keeps the old
    file's permission bits: a hard link to the old file keeps the old content."""
    names = parts(rel)
    name = names[-1]
    with _parent(root, names, rel, create=True) as dir_fd:
        old = _lstat(dir_fd, name)
        _only_regular(old, name, rel)
        mode = stat.S_IMODE(old.st_mode) if old is not None else 0o644
        tmp = f".progenitor-write-{secrets.token_hex(6)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC, mode, dir_fd=dir_fd)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.chmod(tmp, mode, dir_fd=dir_fd)  # the umask narrowed os.open's mode
            os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=dir_fd)
            except OSError:
                pass
            raise


def write_text(root: Union[str, Path], rel: str, text: str) -> None:
    write_bytes(root, rel, text.encode("utf-8"))


def remove(root: Union[str, Path], rel: str) -> None:
    """Delete the regular file ``rel`` if it exists (a link is refused, not removed)."""
    names = parts(rel)
    try:
        with _parent(root, names, rel, create=False) as dir_fd:
            st = _lstat(dir_fd, names[-1])
            if st is None:
                return
            _only_regular(st, names[-1], rel)
            os.unlink(names[-1], dir_fd=dir_fd)
    except (FileNotFoundError, NotADirectoryError):
        return
