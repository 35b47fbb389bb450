"""A candidate's outputs, brought back as untrusted data: packed on the worker, unpacked on
the driver, with every cap counted and nothing dangerous let through.

Packing walks the outputs one directory entry at a time (never a list of them all) and keeps
only regular files and directories: links, devices, fifos and sockets are dropped, and so is
every path with a ``.git`` component in any letter case (a planted repository would run its
``core.fsmonitor`` in the shell prompt of whoever opens the folder), and so is every path
beyond ``OUTPUTS``: deeper or longer than the driver's run directory can hold (an
``ENAMETOOLONG`` while unpacking took a run down), or with a control character in a name
(it would be printed on a terminal). Files come back 0644,
directories 0755: no exec bit, no setuid. The caps are bytes (with each member's 512-byte
header and padding counted, so 300,000 empty files are not free), entries, and seconds. The
files the scorer needs are packed first, so that a filler whose name sorts first cannot
crowd them out. Unpacking applies the same rules again, whatever the archive holds, and an
archive that cannot be written on the host is a ``CandidateDataError``: that candidate fails,
the run goes on.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
import time
from pathlib import Path, PurePosixPath
from typing import Iterator, Optional

from pydantic import BaseModel

from progenitor.boundary.display import shown
from progenitor.boundary.tree_files import is_git_name
from progenitor.boundary.walk import TREE, Bounds, refusal
from progenitor.errors import CandidateDataError
from progenitor.sandbox.outcome import size

__all__ = ["OUTPUTS", "Packed", "pack_outputs", "unpack_outputs", "forbidden_name"]

OUTPUTS = Bounds(depth=TREE.depth, path_bytes=TREE.path_bytes, control=False)
"""What a path in the outputs may be: as a committed tree's, and no control character in a name."""

BLOCK = 512
TAR_SLACK = 2 * BLOCK + tarfile.RECORDSIZE
"""The end-of-archive blocks and, at most, tarfile's padding to a whole record."""
FILE_MODE, DIR_MODE = 0o644, 0o755


class Packed(BaseModel):
    """An outputs archive and what was left out of it."""

    archive: bytes = b""
    entries: int = 0
    counted: int = 0
    """The archive's size as counted against the cap (headers included)."""
    dropped: int = 0
    """Links, devices, fifos, sockets and ``.git`` paths: never brought back."""
    refused: list[str] = []
    """Paths beyond ``OUTPUTS`` (too deep, too long, control characters), with why: never
    brought back (the first 100 named)."""
    cut: str = ""
    """One sentence when a cap left something out ('' when everything that may come back did)."""
    missing: list[str] = []
    """Of the files asked for first, those that exist but could not be packed."""


def forbidden_name(parts: tuple[str, ...]) -> bool:
    """A path that may not come back: git's own directory in any spelling (``tree_files.is_git_name``:
    ``.GIT``, ``.git.``, ``GIT~1``), or a part that leaves the directory."""
    return any(is_git_name(p) or p in ("", ".", "..") for p in parts)


def _cost(info: tarfile.TarInfo, file_size: int) -> int:
    """What a member takes in the archive: its header (a long name's extended header too) and
    its content padded to whole blocks."""
    header = len(info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape"))
    return header + -(-file_size // BLOCK) * BLOCK


class _Packer:
    def __init__(self, top: Path, cap_bytes: int, max_entries: Optional[int], seconds: Optional[float]):
        self.top, self.cap, self.max_entries = top, cap_bytes, max_entries
        self.deadline = time.monotonic() + seconds if seconds else None
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)
        self.out = Packed()
        self.done: set[str] = set()
        self.left_out = 0
        self.refused = 0
        self.stopped = ""

    def full(self) -> bool:
        if self.stopped:
            return True
        if self.max_entries is not None and self.out.entries >= self.max_entries:
            self.stopped = f"more than {self.max_entries} files and directories (the first {self.max_entries} kept)"
        elif self.deadline is not None and time.monotonic() > self.deadline:
            self.stopped = "packing them took too long (what was packed by then kept)"
        return bool(self.stopped)

    def add(self, rel: str, st: os.stat_result) -> bool:
        """Add one entry (``rel`` below the top); False when it did not fit."""
        if rel in self.done or self.full():
            return rel in self.done
        info = tarfile.TarInfo(rel)
        info.mtime, info.uid, info.gid, info.uname, info.gname = int(st.st_mtime), 0, 0, "", ""
        if stat.S_ISDIR(st.st_mode):
            info.type, info.mode = tarfile.DIRTYPE, DIR_MODE
            cost = _cost(info, 0)
        else:
            info.mode, info.size = FILE_MODE, st.st_size
            cost = _cost(info, st.st_size)
        if self.out.counted + cost + TAR_SLACK > self.cap:
            self.left_out += 1
            return False
        if info.isdir():
            self.tar.addfile(info)
        elif not self._add_file(rel, info, st.st_size):
            return False
        self.out.entries += 1
        self.out.counted += cost
        self.done.add(rel)
        return True

    def _add_file(self, rel: str, info: tarfile.TarInfo, expected: int) -> bool:
        """Add a regular file, opened without following a link (it is the candidate's)."""
        try:
            fd = os.open(self.top / rel, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            self.out.dropped += 1
            return False
        with os.fdopen(fd, "rb") as handle:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size != expected:  # swapped since it was looked at
                self.out.dropped += 1
                return False
            info.size = st.st_size
            self.tar.addfile(info, handle)
        return True

    def refuse(self, rel: str, why: str) -> None:
        if len(self.out.refused) < 100:
            self.out.refused.append(f"{shown(rel)[:200]}: {why}")
        self.refused += 1

    def close(self) -> Packed:
        self.tar.close()
        self.out.archive = self.buf.getvalue()
        notes = []
        if self.stopped:
            notes.append(self.stopped)
        if self.left_out:
            notes.append(f"{self.left_out} entries left out at the {size(self.cap)} output cap "
                         "(train.resources.outputs; headers count)")
        if self.refused:
            notes.append(f"{self.refused} paths refused ({self.out.refused[0]}"
                         + (", ..." if self.refused > 1 else "") + ")")
        if notes:
            self.out.cut = "outputs cut: " + "; ".join(notes)
        return self.out


def pack_outputs(top: Path, cap_bytes: int, max_entries: Optional[int] = None, first: tuple[str, ...] = (),
                 seconds: Optional[float] = None) -> Packed:
    """Tar what may come back of ``top`` (see the module docstring); ``first`` names go in first."""
    packer = _Packer(Path(top), cap_bytes, max_entries, seconds)
    try:
        for rel in first:
            st = _plain_file(Path(top), rel)
            if st is not None:
                for parent in reversed(PurePosixPath(rel).parents[:-1]):
                    packer.add(str(parent), os.lstat(Path(top) / parent))
                if not packer.add(rel, st):
                    packer.out.missing.append(rel)
        for rel, st in _walk(Path(top), packer):
            packer.add(rel, st)
            if packer.full():
                break
    finally:
        packed = packer.close()
    return packed


def _plain_file(top: Path, rel: str) -> Optional[os.stat_result]:
    """``rel``'s stat if it is a regular file reached through real directories only."""
    parts = PurePosixPath(rel).parts
    if not parts or forbidden_name(parts) or PurePosixPath(rel).is_absolute() or refusal(rel, OUTPUTS):
        return None
    here = top
    for part in parts:
        here = here / part
        try:
            st = os.lstat(here)
        except OSError:
            return None
        if stat.S_ISLNK(st.st_mode):
            return None
    return st if stat.S_ISREG(st.st_mode) else None


def _walk(top: Path, packer: _Packer) -> Iterator[tuple[str, os.stat_result]]:
    """(relative path, lstat) of every directory and regular file below ``top``, depth first,
    one entry at a time; everything else is counted as dropped."""
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        try:
            it = os.scandir(top / rel_dir if rel_dir else top)
        except OSError:
            continue
        with it:
            for entry in it:
                if packer.full():
                    return
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if is_git_name(entry.name) or not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
                    packer.out.dropped += 1
                    continue
                why = refusal(rel, OUTPUTS)
                if why:
                    packer.refuse(rel, why)
                    continue
                yield rel, st
                if stat.S_ISDIR(st.st_mode):
                    stack.append(rel)


def unpack_outputs(archive: bytes, dest: Path, max_entries: Optional[int] = None,
                   seconds: Optional[float] = None) -> int:
    """Extract an outputs archive into ``dest`` with the packing rules enforced again: regular
    files (0644) and directories (0755) only, no ``.git`` component, nothing outside ``dest``,
    nothing beyond ``OUTPUTS``. Returns how many entries were written; an archive that cannot
    be read or written here is a ``CandidateDataError``."""
    dest.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + seconds if seconds else None
    written = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r") as tar:
            for member in tar:  # streamed: no list of every member
                if (max_entries is not None and written >= max_entries) or (
                        deadline is not None and time.monotonic() > deadline):
                    break
                if not _may_unpack(member):
                    continue
                member.mode = FILE_MODE if member.isfile() else DIR_MODE
                tar.extract(member, dest, filter="data")
                written += 1
    except (tarfile.TarError, OSError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CandidateDataError(f"its outputs could not be unpacked on the host: {shown(why)[:300]}") from None
    return written


def _may_unpack(member: tarfile.TarInfo) -> bool:
    path = PurePosixPath(member.name)
    return ((member.isfile() or member.isdir()) and not path.is_absolute() and not forbidden_name(path.parts)
            and refusal(member.name, OUTPUTS) is None)
