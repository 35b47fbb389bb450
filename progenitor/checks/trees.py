"""A model repo's files as a check reads them: at a commit (what a run will use) or in a
directory (an exported tree)."""

from __future__ import annotations

import posixpath
import stat
from pathlib import Path
from typing import Optional, Protocol

from progenitor.boundary import tree_files
from progenitor.boundary.walk import walk
from progenitor.errors import UnsafePathError

__all__ = ["CommitTree", "DirTree", "Tree"]


class Tree(Protocol):
    where: str
    """How messages name the tree (``commit 1a2b3c4d5e``)."""

    def files(self) -> list[str]:
        """Every file's path, relative, with ``/``."""
        ...

    def read(self, path: str) -> Optional[str]:
        """A file's text, or None when the tree has no such file."""
        ...


class CommitTree:
    """The tree of one commit, read through git (nothing is written to disk)."""

    def __init__(self, lineage, sha: str):
        self.lineage, self.sha = lineage, sha
        self.where = f"commit {sha[:10]}"
        self._files: Optional[list[str]] = None

    def files(self) -> list[str]:
        if self._files is None:
            out = self.lineage.git.ls_tree("-r", "--name-only", "-z", self.sha)
            self._files = [name for name in out.split("\0") if name]
        return self._files

    def read(self, path: str) -> Optional[str]:
        name = posixpath.normpath(path)  # ./config.yaml is config.yaml; .env stays .env
        if name not in self.files():
            return None
        return self.lineage.show(self.sha, name)


class DirTree:
    """The files under a directory."""

    def __init__(self, root: Path, where: Optional[str] = None):
        self.root = Path(root)
        self.where = where or str(root)

    def files(self) -> list[str]:
        """Regular files, ``.git`` not entered, links not followed (``boundary.walk``: iterative, bounded)."""
        return sorted(e.rel for e in walk(self.root, refused=[], skip=(".git",))
                      if stat.S_ISREG(e.st.st_mode) and ".git" not in e.rel.split("/"))

    def read(self, path: str) -> Optional[str]:
        try:
            return tree_files.read_text(self.root, posixpath.normpath(path))
        except (OSError, UnicodeDecodeError, UnsafePathError):
            return None
