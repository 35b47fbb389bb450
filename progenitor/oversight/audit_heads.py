"""The audit chain's heads in git: one commit per audit entry on ``refs/progenitor/audit``.

Each commit's message carries the entry's place in the log and its hash (as JSON after a
one-line summary); its parent is the commit of the entry before. The ref sits beside the
lineage's refs, so ``git push origin 'refs/progenitor/*'`` (or a clone with those refs) carries
it: a log rewritten later no longer matches the heads that a copy taken before holds.
Plain ``git`` through subprocess: no worktree, index or branch of the user's is touched.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from pydantic import BaseModel

from progenitor.lineage import IDENTITY

__all__ = ["AUDIT_REF", "Head", "read_heads", "record_head"]

AUDIT_REF = "refs/progenitor/audit"
_MARK = "progenitor-audit-head "


class Head(BaseModel):
    seq: int
    hash: str
    key: str = ""
    commit: str = ""
    """The git commit that records it (set when read back)."""


def _git(root: Path, *args: str, stdin: str = "") -> str:
    env = {**os.environ, **IDENTITY}
    done = subprocess.run(["git", "-C", str(root), *args], input=stdin, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip() or f"git {args[0]} failed")
    return done.stdout.strip()


def record_head(root: Path, head: Head, summary: str) -> str:
    """A commit recording ``head`` on top of the ref's last one; returns its sha."""
    empty_tree = _git(root, "hash-object", "-t", "tree", "-w", "--stdin")
    parent = _git(root, "for-each-ref", "--format=%(objectname)", AUDIT_REF)
    body = _MARK + json.dumps(head.model_dump(exclude={"commit"}), sort_keys=True)
    args = ["commit-tree", empty_tree, "-m", summary, "-m", body]
    if parent:
        args += ["-p", parent]
    sha = _git(root, *args)
    # The old value makes the move a compare-and-swap: a concurrent writer is refused, not lost.
    _git(root, "update-ref", "-m", summary, AUDIT_REF, sha, parent or "0" * 40)
    return sha


def read_heads(root: Path) -> list[Head]:
    """Every head recorded in ``root``'s git, oldest first (none if the ref does not exist)."""
    try:
        out = _git(root, "log", "--format=%H%x00%B%x01", AUDIT_REF, "--")
    except RuntimeError:
        return []
    heads = []
    for record in out.split("\x01"):
        if "\x00" not in record:
            continue
        sha, message = record.strip().split("\x00", 1)
        for line in message.splitlines():
            if line.startswith(_MARK):
                heads.append(Head(**json.loads(line[len(_MARK):]), commit=sha))
    return sorted(heads, key=lambda h: h.seq)
