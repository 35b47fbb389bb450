"""The tamper-evident audit log: every decision, human or policy, hash-chained.

Each entry carries the SHA-256 of the entry before it and its own hash over its content,
so editing, inserting or removing any entry breaks the chain at that point, which
``verify`` reports (``progenitor audit verify``).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel

from progenitor.runs import now_iso

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
    """Where and how the chain breaks, when it does."""


class AuditLog:
    """Append-only JSON-lines file with a hash chain."""

    def __init__(self, path: Path):
        self.path = Path(path)
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

    def append(self, *, key: str, action: str, actor: str, run: str, gen: int, commit: Optional[str],
               payload: Any = None, comment: str = "", **extra: Any) -> dict:
        """Record a decision once per key; a repeated key (a resumed run) returns the first record."""
        with self._lock:
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
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as handle:
                handle.write(json.dumps(entry, sort_keys=True, default=str) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            return entry

    def verify(self) -> Verification:
        prev = GENESIS
        entries = self.entries() if self.path.exists() else []
        for index, entry in enumerate(entries):
            if entry.get("seq") != index:
                return Verification(ok=False, entries=len(entries), problem=f"entry {index}: sequence number {entry.get('seq')} (an entry was removed or inserted)")
            if entry.get("prev") != prev:
                return Verification(ok=False, entries=len(entries), problem=f"entry {index}: does not follow the entry before it (removed or reordered)")
            if _digest(entry) != entry.get("hash"):
                return Verification(ok=False, entries=len(entries), problem=f"entry {index}: content does not match its hash (edited)")
            prev = entry["hash"]
        return Verification(ok=True, entries=len(entries))
