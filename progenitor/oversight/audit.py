"""The tamper-evident audit log: every decision, human or policy, hash-chained.

Each entry carries the SHA-256 of the entry before it and its own hash over its content,
so editing, inserting, removing or reordering entries breaks the chain at that point. A log
rewritten whole (every hash recomputed) would still chain, so each entry's hash is also
recorded in git (``audit_heads``: one commit per entry on ``refs/progenitor/audit``, which
travels with the lineage): ``verify`` compares the log with those heads, and with the heads
of another clone (``against``), taken before any rewrite, and names the first bad entry.

Several processes append (the run, a decision from the CLI, the web page): an exclusive
``flock`` on a lock file beside the log (or, in a team's PostgreSQL store, the database's lock)
makes each append, and its git head, one step.

A human decision may carry its person's SSH signature of the decision's statement
(``signatures``); ``verify`` checks each against an allowed-signers file, and names an entry the
task required to be signed that is not. The chain proves the order and integrity of the entries
since their heads were recorded; only a signature proves who took a decision.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional, Union

from pydantic import BaseModel

from progenitor.oversight.audit_heads import AUDIT_REF, Head, read_heads, record_head
from progenitor.run.rundir import STATE_DIR, now_iso

if TYPE_CHECKING:
    from progenitor.oversight.signatures import AllowedSigners

__all__ = ["AUDIT_REF", "GENESIS", "AuditLog", "FileEntries", "Signed", "TableEntries", "Verification", "audit_log",
           "payload_digest"]

GENESIS = "0" * 64


def _digest(entry: dict) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def payload_digest(payload: Any) -> str:
    """Hash of what the decider saw, so a record proves which payload it was about."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


class Signed(BaseModel):
    """A signed entry, as ``verify`` found it."""

    entry: int
    actor: str
    action: str
    gate: str = ""
    run: str = ""
    key: str = ""
    """The signer's key: type and fingerprint."""
    ok: Optional[bool] = None
    """True: verified and allowed for the actor; False: forged or not allowed; None: not checked."""
    problem: str = ""


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
    signed: list[Signed] = []
    """Every signed entry and what its signature proves (``signers`` given: checked)."""
    unsigned_required: list[int] = []
    """Entries the task required to be signed that are not."""


class FileEntries:
    """The log as a JSON-lines file (a model repo's own, beside its SQLite store); one writer at a
    time through an exclusive ``flock`` on a lock file beside it."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        return str(self.path)

    def exists(self) -> bool:
        return self.path.exists()

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    @contextmanager
    def exclusive(self) -> Iterator["FileEntries"]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield self
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def write(self, entry: dict) -> None:
        with open(self.path, "a") as handle:
            handle.write(json.dumps(entry, sort_keys=True, default=str) + "\n")
            handle.flush()
            os.fsync(handle.fileno())


class TableEntries:
    """The log as a table of a team's store (PostgreSQL): one append at a time, under the
    database's lock named ``audit``, so the runs and pages of every machine chain one log."""

    def __init__(self, db: Any, conn: Any = None):
        self.db, self.conn = db, conn

    @property
    def where(self) -> str:
        return f"the audit table of {self.db.where}"

    def exists(self) -> bool:
        return True

    def read(self) -> list[dict]:
        if self.conn is not None:
            return [json.loads(r["entry"]) for r in self.conn.execute("SELECT entry FROM audit ORDER BY seq").fetchall()]
        with self.db.connect() as conn:
            return TableEntries(self.db, conn).read()

    @contextmanager
    def exclusive(self) -> Iterator["TableEntries"]:
        with self.db.transaction("audit") as conn:
            yield TableEntries(self.db, conn)

    def write(self, entry: dict) -> None:
        self.conn.execute("INSERT INTO audit (seq, key, hash, entry) VALUES (?, ?, ?, ?)",
                          (entry["seq"], entry["key"], entry["hash"], json.dumps(entry, sort_keys=True, default=str)))


class AuditLog:
    """Append-only entries with a hash chain (``entries``: a file, or a store's table; a path
    means the file); ``git_root``: also record each head in git."""

    def __init__(self, entries: Union[Path, str, FileEntries, TableEntries], git_root: Optional[Path] = None):
        self.store = FileEntries(Path(entries)) if isinstance(entries, (str, Path)) else entries
        self.git_root = Path(git_root) if git_root else None

    @property
    def path(self) -> Optional[Path]:
        """The file, for a log kept in one."""
        return getattr(self.store, "path", None)

    @property
    def where(self) -> str:
        return self.store.where

    def exists(self) -> bool:
        return self.store.exists()

    def entries(self) -> list[dict]:
        return self.store.read()

    def find(self, key: str) -> Optional[dict]:
        """The entry recorded under an idempotency key (run/gen/what), if any."""
        for entry in self.entries():
            if entry.get("key") == key:
                return entry
        return None

    def append(self, *, key: str, action: str, actor: str, run: str, gen: int, commit: Optional[str],
               payload: Any = None, comment: str = "", **extra: Any) -> dict:
        """Record a decision once per key; a repeated key (a resumed run, a second surface) returns
        the first record."""
        with self.store.exclusive() as store:
            entries = store.read()
            existing = next((e for e in entries if e.get("key") == key), None)
            if existing:
                return existing
            entry = {
                "seq": len(entries), "time": now_iso(), "key": key, "run": run, "gen": gen,
                "action": action, "actor": actor, "commit": commit,
                "payload_sha256": extra.pop("payload_sha256", None) or payload_digest(payload), "comment": comment,
                **extra, "prev": entries[-1]["hash"] if entries else GENESIS,
            }
            entry["hash"] = _digest(entry)
            store.write(entry)
            if self.git_root is not None:
                try:
                    record_head(self.git_root, Head(seq=entry["seq"], hash=entry["hash"], key=key),
                                f"audit {entry['seq']}: {action} by {actor}")
                except RuntimeError:
                    pass  # the entry stands; verify counts it as not yet recorded in git
            return entry

    def verify(self, against: Optional[Path] = None, signers: Optional["AllowedSigners"] = None) -> Verification:
        """The chain, then the heads recorded in git here (and in ``against``, a clone), then the
        signatures (against ``signers``, an allowed-signers file)."""
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
        signed, unsigned = check_signatures(entries, signers)
        for s in signed:
            if s.ok is False:
                problems.append((s.entry, 2, f"entry {s.entry}: {s.action} {s.gate} of run {s.run} by {s.actor}: "
                                            f"{s.problem}"))
        for index in unsigned:
            e = entries[index]
            problems.append((index, 3, f"entry {index}: {e.get('action')} {e.get('gate', '')} of run {e.get('run')} by "
                                       f"{e.get('actor')} is not signed, and its task requires signatures "
                                       f"(oversight.require_signatures)"))
        recorded = max((h.seq for h in heads), default=-1)
        out = Verification(ok=not problems, entries=len(entries), git_heads=len(heads), signed=signed,
                           unsigned_required=unsigned)
        if not problems:
            out.unrecorded = max(0, len(entries) - 1 - recorded) if heads else 0
            return out
        index, _, problem = min(problems)
        return out.model_copy(update={"problem": problem, "bad_entry": index})


def check_signatures(entries: list[dict], signers: Optional["AllowedSigners"]) -> tuple[list[Signed], list[int]]:
    """What each signed entry's signature proves, and which entries should be signed and are not."""
    from progenitor.oversight import signatures

    signed, unsigned = [], []
    for index, entry in enumerate(entries):
        armoured = entry.get("signature")
        if not armoured:
            if entry.get("signature_required"):
                unsigned.append(index)
            continue
        item = Signed(entry=index, actor=str(entry.get("actor")), action=str(entry.get("action")),
                      gate=str(entry.get("gate") or ""), run=str(entry.get("run") or ""))
        message = signatures.statement(run=item.run, gate=item.gate, payload_sha256=str(entry.get("payload_sha256")),
                                       decision=item.action, by=item.actor, comment=str(entry.get("comment") or ""),
                                       edits=entry.get("edits"))
        try:
            sig = signatures.verify(armoured, message)
            item.key = f"{sig.key_type} {sig.fingerprint}"
            why = signers.allows(signatures.principal(item.actor), sig, signatures.load_time(entry.get("time"))) \
                if signers is not None else None
        except signatures.SignatureError as exc:
            item.ok, item.problem = False, str(exc)
        else:
            if signers is None:
                item.problem = "not checked against an allowed-signers file"
            else:
                item.ok, item.problem = why is None, why or ""
        signed.append(item)
    return signed, unsigned


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
    """The audit log of a model repo (its own file, the default store's), heads in the repo's git."""
    repo_root = Path(repo_root)
    return AuditLog(repo_root / STATE_DIR / "audit.jsonl", git_root=repo_root)
