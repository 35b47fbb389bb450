"""The tamper-evident audit log: every decision, human or policy, hash-chained.

Each entry carries the SHA-256 of the entry before it and its own hash over its content,
so editing, inserting, removing or reordering entries breaks the chain at that point. A log
rewritten whole (every hash recomputed) would still chain, so each entry's hash is also
recorded in git (``audit_heads``: one commit per entry on ``refs/progenitor/audit``, which
travels with the lineage): ``verify`` compares the log with those heads, and with the heads
of another clone (``against``), taken before any rewrite, and names the first bad entry.

Several processes append (the run, a decision from the CLI, the web page): an exclusive
``flock`` on a lock file beside the log makes each append, and its git head, one step.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

from pydantic import BaseModel

from progenitor.oversight.audit_heads import AUDIT_REF, Head, read_heads, record_head
from progenitor.run.rundir import STATE_DIR, now_iso

__all__ = ["AUDIT_REF", "GENESIS", "AuditLog", "Verification", "audit_log", "payload_digest"]

GENESIS = "0" * 64


def _digest(entry: dict) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def payload_digest(payload: Any) -> str:
    """Hash of what the decider saw, so a record proves which payload it was about."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


class Verification(BaseModel):
    ok: bool
    entries: int
    problem: str = ""
    """Where and how the log breaks, when it does."""
    bad_entry: Optional[int] = None
    """The first entry (its place in the log, 0-based) that is wrong or missing."""
    git_heads: int = 0
    """Entry hashes recorded in git (this repository's, and ``against``'s) that were compared."""
    unrecorded: int = 0
    """Entries at the end of the log with no head in git yet (a head that could not be written)."""


class AuditLog:
    """Append-only JSON-lines file with a hash chain; ``git_root``: also record each head in git."""

    def __init__(self, path: Path, git_root: Optional[Path] = None):
        self.path = Path(path)
        self.git_root = Path(git_root) if git_root else None
        self._lock = threading.Lock()

    def entries(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def find(self, key: str) -> Optional[dict]:
        """The entry recorded under an idempotency key (run/gen/what), if any."""
        for entry in self.entries():
            if entry.get("key") == key:
                return entry
        return None

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def append(self, *, key: str, action: str, actor: str, run: str, gen: int, commit: Optional[str],
               payload: Any = None, comment: str = "", **extra: Any) -> dict:
        """Record a decision once per key; a repeated key (a resumed run, a second surface) returns
        the first record."""
        with self._exclusive():
            entries = self.entries()
            existing = next((e for e in entries if e.get("key") == key), None)
            if existing:
                return existing
            entry = {
                "seq": len(entries), "time": now_iso(), "key": key, "run": run, "gen": gen,
                "action": action, "actor": actor, "commit": commit,
                "payload_sha256": payload_digest(payload), "comment": comment, **extra,
                "prev": entries[-1]["hash"] if entries else GENESIS,
            }
            entry["hash"] = _digest(entry)
            with open(self.path, "a") as handle:
                handle.write(json.dumps(entry, sort_keys=True, default=str) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            if self.git_root is not None:
                try:
                    record_head(self.git_root, Head(seq=entry["seq"], hash=entry["hash"], key=key),
                                f"audit {entry['seq']}: {action} by {actor}")
                except RuntimeError:
                    pass  # the entry stands; verify counts it as not yet recorded in git
            return entry

    def verify(self, against: Optional[Path] = None) -> Verification:
        """The chain, then the heads recorded in git here (and in ``against``, a clone)."""
        entries = self.entries()
        problems = []
        chain = _check_chain(entries)
        if chain:  # at the same entry, the chain's own account of what happened comes first
            problems.append((chain[0], 0, chain[1]))
        heads: list[Head] = []
        for root in filter(None, [self.git_root, Path(against) if against else None]):
            found = read_heads(root)
            heads += found
            where = "in git" if root == self.git_root else f"in {root}"
            bad = _check_heads(entries, found, where)
            if bad:
                problems.append((bad[0], 1, bad[1]))
        recorded = max((h.seq for h in heads), default=-1)
        if not problems:
            return Verification(ok=True, entries=len(entries), git_heads=len(heads),
                                unrecorded=max(0, len(entries) - 1 - recorded) if heads else 0)
        index, _, problem = min(problems)
        return Verification(ok=False, entries=len(entries), problem=problem, bad_entry=index, git_heads=len(heads))


def _check_chain(entries: list[dict]) -> Optional[tuple[int, str]]:
    prev = GENESIS
    for index, entry in enumerate(entries):
        if entry.get("seq") != index:
            return index, f"entry {index}: sequence number {entry.get('seq')} (an entry was removed or inserted)"
        if entry.get("prev") != prev:
            return index, f"entry {index}: does not follow the entry before it (removed or reordered)"
        if _digest(entry) != entry.get("hash"):
            return index, f"entry {index}: content does not match its hash (edited)"
        prev = entry["hash"]
    return None


def _check_heads(entries: list[dict], heads: list[Head], where: str) -> Optional[tuple[int, str]]:
    """The first entry whose hash differs from the head recorded for it, or that is missing."""
    for head in sorted(heads, key=lambda h: h.seq):
        if head.seq >= len(entries):
            return head.seq, (f"entry {head.seq}: recorded {where} ({head.commit[:10]}) but missing from the log "
                              f"(entries were removed)")
        if entries[head.seq].get("hash") != head.hash:
            return head.seq, (f"entry {head.seq}: its hash differs from the one recorded {where} "
                              f"({head.commit[:10]}): the log was rewritten after it was recorded")
    return None


def audit_log(repo_root: Path) -> AuditLog:
    """The audit log of a model repo, its heads recorded in the repo's git."""
    repo_root = Path(repo_root)
    return AuditLog(repo_root / STATE_DIR / "audit.jsonl", git_root=repo_root)
