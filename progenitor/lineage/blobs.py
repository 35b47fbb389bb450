"""A commit's tree written from its blobs, byte for byte: the code reviewed is the code trained.

``git archive`` and a checkout both process ``.gitattributes``: ``export-subst`` expands
``$Format:...$`` (``%n`` is a newline: a comment became a line of code), ``export-ignore`` leaves
files out, ``ident`` rewrites ``$Id$``, ``eol``/``text`` convert line endings, ``filter`` runs a
configured program over the content, ``working-tree-encoding`` re-encodes it. A candidate commits
``.gitattributes`` like any other file, so with either of them the bytes a sandbox ran were not
the blobs the reviewer read, nor the commit a user merges.

Here no attribute is looked at: ``git ls-tree -r -z`` lists the commit's entries and
``git cat-file --batch`` hands each blob's bytes over, which are written as they are. Regular
files come out 0644 or, for mode 100755, 0755; a symbolic link (mode 120000) is written as a
link only where asked (the trusted export and the review's tree, whose checks look for links;
never in a training tree, which has always dropped them); a submodule (160000) is an empty
directory, as ``git archive`` and a checkout leave it. Every path is held to
``boundary.walk.TREE`` (depth, length, entries) and to ``tree_files.parts`` (no ``..``, no
``.git`` in any spelling): a tree beyond them is a ``CandidateDataError``, before anything is written.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import time
from pathlib import Path
from typing import NamedTuple

from progenitor.boundary import tree_files
from progenitor.boundary.display import shown
from progenitor.boundary.walk import TREE, Bounds, refusal
from progenitor.errors import CandidateDataError, UnsafePathError

__all__ = ["Blob", "entries", "tree_tar", "write_tree"]

REGULAR, EXECUTABLE, LINK, SUBMODULE = "100644", "100755", "120000", "160000"


class Blob(NamedTuple):
    """One entry of a commit's tree."""

    mode: str
    sha: str
    path: str
    """``/``-separated; bytes git holds that are not UTF-8 are kept as surrogate escapes."""


def _git(root: Path, *args: str) -> bytes:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                          stdin=subprocess.DEVNULL).stdout


def entries(root: Path, sha: str, bounds: Bounds = TREE) -> list[Blob]:
    """Every file, link and submodule of commit ``sha``'s tree, checked against ``bounds``."""
    found: list[Blob] = []
    for record in _git(root, "ls-tree", "-r", "-z", "--full-tree", sha).split(b"\0"):
        if not record:
            continue
        meta, _, raw = record.partition(b"\t")
        mode, _kind, blob = meta.decode("ascii").split(" ")
        path = raw.decode("utf-8", "surrogateescape")
        try:
            tree_files.parts(path)
        except UnsafePathError as exc:
            raise CandidateDataError(f"its tree holds a path that may not be written: {exc}") from None
        why = refusal(path, bounds)
        if why:
            raise CandidateDataError(f"its tree holds {why}: {shown(path)[:200]}")
        if mode not in (REGULAR, EXECUTABLE, LINK, SUBMODULE):
            raise CandidateDataError(f"its tree holds {shown(path)[:200]} of unknown mode {mode}")
        found.append(Blob(mode, blob, path))
        if len(found) > bounds.entries:
            raise CandidateDataError(f"its tree holds more than {bounds.entries} files")
    return found


class _Reader:
    """One ``git cat-file --batch`` process: a blob's bytes by its id, one request at a time."""

    def __init__(self, root: Path):
        self.proc = subprocess.Popen(["git", "-C", str(root), "cat-file", "--batch"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def read(self, sha: str) -> bytes:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(sha.encode("ascii") + b"\n")
        self.proc.stdin.flush()
        header = self.proc.stdout.readline().split()
        if len(header) != 3 or header[1] != b"blob":
            raise CandidateDataError(f"blob {sha} cannot be read from the repository")
        data = self.proc.stdout.read(int(header[2]))
        self.proc.stdout.read(1)  # the newline after each object
        return data

    def __enter__(self) -> "_Reader":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc.wait()


def write_tree(root: Path, sha: str, dest: Path, links: bool = False) -> Path:
    """Write commit ``sha``'s tree into the new or empty directory ``dest`` from its blobs
    (see the module docstring); ``links``: write symbolic links as links (else they are left out)."""
    listed = entries(root, sha)
    dest.mkdir(parents=True, exist_ok=True)
    deferred = []
    with _Reader(root) as reader:
        for blob in listed:
            target = dest / blob.path
            target.parent.mkdir(parents=True, exist_ok=True)
            if blob.mode == SUBMODULE:
                target.mkdir(exist_ok=True)
            elif blob.mode == LINK:
                deferred.append((blob, reader.read(blob.sha)))
            else:
                _write(target, reader.read(blob.sha), 0o755 if blob.mode == EXECUTABLE else 0o644)
    # Links last: no file above was written through one.
    for blob, link_target in deferred if links else []:
        os.symlink(os.fsdecode(link_target), dest / blob.path)
    return dest


def _write(target: Path, data: bytes, mode: int) -> None:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(target, mode)  # the umask narrowed os.open's mode


def tree_tar(root: Path, sha: str) -> bytes:
    """Commit ``sha``'s tree as a tar archive, from its blobs: regular files (0644, or 0755 for
    executables) and directories; links are left out (a training tree has never had them)."""
    buf = io.BytesIO()
    now = int(time.time())
    made: set[str] = set()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar, _Reader(root) as reader:
        for blob in entries(root, sha):
            if blob.mode == LINK:
                continue
            parts = blob.path.split("/")
            dirs = ["/".join(parts[:i]) for i in range(1, len(parts) + (blob.mode == SUBMODULE))]
            for directory in dirs:
                if directory not in made:
                    made.add(directory)
                    info = tarfile.TarInfo(directory)
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, now
                    tar.addfile(info)
            if blob.mode == SUBMODULE:
                continue
            data = reader.read(blob.sha)
            info = tarfile.TarInfo(blob.path)
            info.size, info.mtime = len(data), now
            info.mode = 0o755 if blob.mode == EXECUTABLE else 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
