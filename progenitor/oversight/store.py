"""The decision store: what waits for a person, what was decided, and reverts, shared by every
process that touches a model repo (the run waiting at a gate, the CLI in another shell, the
web page, lab tooling through the API).

One SQLite file per model repo (``.progenitor/decisions.sqlite``) in WAL mode, so readers never
block the writer and a waiting run can poll it cheaply. A decision's key is its gate
(``run``, ``gate``): the database refuses a second row, so two decisions sent at once record
exactly one, and the second caller is told which one stands. Schema changes are append-only
named migrations, applied once each.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

from pydantic import BaseModel

from progenitor.errors import AlreadyDecided
from progenitor.oversight.audit import payload_digest
from progenitor.run.rundir import STATE_DIR, ensure_state_dir, now_iso

__all__ = ["DecisionStore", "Gate", "Recorded", "Revert"]

MIGRATIONS: list[tuple[str, str]] = [
    ("001 gates and decisions", """
        CREATE TABLE gates (
            run TEXT NOT NULL, gate TEXT NOT NULL, kind TEXT NOT NULL, gen INTEGER NOT NULL,
            description TEXT NOT NULL, request TEXT NOT NULL, payload_sha256 TEXT NOT NULL, opened TEXT NOT NULL,
            PRIMARY KEY (run, gate));
        CREATE TABLE decisions (
            run TEXT NOT NULL, gate TEXT NOT NULL, type TEXT NOT NULL, response TEXT NOT NULL,
            by TEXT NOT NULL, comment TEXT NOT NULL, surface TEXT NOT NULL, decided TEXT NOT NULL,
            applied TEXT, PRIMARY KEY (run, gate));
    """),
    ("002 reverts", """
        CREATE TABLE reverts (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, run TEXT NOT NULL, gen INTEGER NOT NULL, by TEXT NOT NULL,
            comment TEXT NOT NULL, reverted TEXT NOT NULL, restored TEXT NOT NULL, time TEXT NOT NULL,
            UNIQUE (run, gen));
    """),
]


class Gate(BaseModel):
    """A place where a run waits for a person, with the request (LangChain's HITL shape) it shows."""

    run: str
    gate: str
    """``g<gen>/<kind>`` (``-2``, ``-3`` ... when a generation asks again after an edit)."""
    kind: str
    """training or promotion."""
    gen: int
    description: str
    request: dict
    payload_sha256: str
    """Hash of ``request``: what a decision proves it was about."""
    opened: str


class Recorded(BaseModel):
    """One decision, as stored."""

    run: str
    gate: str
    type: str
    """approve, edit, reject or request-changes (HITL's ``respond``)."""
    response: dict
    """The HITL response handed to the graph: ``{"decisions": [...], ...}``."""
    by: str
    """human:<name>."""
    comment: str = ""
    surface: str = ""
    """cli, api, web or langgraph."""
    decided: str
    applied: Optional[str] = None
    """When the run applied it (None: the run has not resumed yet)."""


class Revert(BaseModel):
    seq: int
    run: str
    gen: int
    by: str
    comment: str
    reverted: list[str]
    """Commits whose promotion was undone (the generation's and every later one)."""
    restored: dict
    """The champion put back (``Champion`` JSON)."""
    time: str


class DecisionStore:
    """The store of one model repo; every call opens its own short connection (threads, processes)."""

    def __init__(self, repo_root: Path):
        self.repo_root = Path(repo_root)
        self.path = self.repo_root / STATE_DIR / "decisions.sqlite"

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        if not self.path.exists():
            ensure_state_dir(self.repo_root)
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=30000")
            _migrate(conn)
            yield conn
        finally:
            conn.close()

    # -- gates --------------------------------------------------------------------------------
    def open_gate(self, run: str, request: dict) -> Gate:
        """Record that ``run`` waits at the gate ``request`` describes (again: the same row)."""
        meta = request["gate"]
        with self._db() as db:
            db.execute("INSERT OR IGNORE INTO gates VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (run, meta["id"], meta["kind"], meta["gen"], meta["description"],
                        json.dumps(request, sort_keys=True), payload_digest(request), now_iso()))
        return self.gate(run, meta["id"])

    def gate(self, run: str, gate: str) -> Optional[Gate]:
        if not self.path.exists():
            return None
        with self._db() as db:
            row = db.execute("SELECT * FROM gates WHERE run = ? AND gate = ?", (run, gate)).fetchone()
        return _gate(row) if row else None

    def gates(self, run: Optional[str] = None) -> list[Gate]:
        if not self.path.exists():
            return []  # reading creates nothing: a repo without runs stays as it is
        with self._db() as db:
            rows = db.execute("SELECT * FROM gates WHERE ? IS NULL OR run = ? ORDER BY opened, rowid",
                              (run, run)).fetchall()
        return [_gate(r) for r in rows]

    def pending(self, run: Optional[str] = None) -> list[Gate]:
        """Gates nobody has decided yet, oldest first."""
        if not self.path.exists():
            return []
        with self._db() as db:
            rows = db.execute(
                "SELECT g.* FROM gates g LEFT JOIN decisions d ON d.run = g.run AND d.gate = g.gate "
                "WHERE d.gate IS NULL AND (? IS NULL OR g.run = ?) ORDER BY g.opened, g.rowid", (run, run)).fetchall()
        return [_gate(r) for r in rows]

    # -- decisions ----------------------------------------------------------------------------
    def record(self, run: str, gate: str, type: str, response: dict, by: str, comment: str = "",
               surface: str = "api") -> Recorded:
        """Store the decision for ``gate``; ``AlreadyDecided`` (naming the first one) if there is one."""
        with self._db() as db:
            try:
                db.execute("INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                           (run, gate, type, json.dumps(response, sort_keys=True), by, comment, surface, now_iso()))
            except sqlite3.IntegrityError:
                first = self.decision(run, gate)
                raise AlreadyDecided(
                    f"{gate} of run {run} was already decided: {first.type} by {first.by} at {first.decided}"
                    f" ({first.surface}); that decision stands") from None
        return self.decision(run, gate)

    def decision(self, run: str, gate: str) -> Optional[Recorded]:
        if not self.path.exists():
            return None
        with self._db() as db:
            row = db.execute("SELECT * FROM decisions WHERE run = ? AND gate = ?", (run, gate)).fetchone()
        if row is None:
            return None
        return Recorded(**{**dict(row), "response": json.loads(row["response"])})

    def mark_applied(self, run: str, gate: str) -> None:
        with self._db() as db:
            db.execute("UPDATE decisions SET applied = ? WHERE run = ? AND gate = ? AND applied IS NULL",
                       (now_iso(), run, gate))

    # -- reverts ------------------------------------------------------------------------------
    def add_revert(self, run: str, gen: int, by: str, comment: str, reverted: list[str], restored: dict) -> Revert:
        with self._db() as db:
            try:
                db.execute("INSERT INTO reverts (run, gen, by, comment, reverted, restored, time) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (run, gen, by, comment, json.dumps(reverted), json.dumps(restored), now_iso()))
            except sqlite3.IntegrityError:
                raise AlreadyDecided(f"generation {gen} of run {run} was already reverted") from None
        return next(r for r in self.reverts(run) if r.gen == gen)

    def reverts(self, run: str) -> list[Revert]:
        if not self.path.exists():
            return []
        with self._db() as db:
            rows = db.execute("SELECT * FROM reverts WHERE run = ? ORDER BY seq", (run,)).fetchall()
        return [Revert(**{**dict(r), "reverted": json.loads(r["reverted"]), "restored": json.loads(r["restored"])})
                for r in rows]

    def fingerprint(self) -> str:
        """Changes whenever a gate, decision or revert is added (the web page polls it)."""
        if not self.path.exists():
            return "0"
        with self._db() as db:
            counts = [db.execute(f"SELECT count(*), max(rowid) FROM {t}").fetchone() for t in ("gates", "decisions", "reverts")]
            applied = db.execute("SELECT count(applied) FROM decisions").fetchone()[0]
        return "-".join(f"{c[0]}.{c[1]}" for c in counts) + f"-{applied}"


def _gate(row: Any) -> Gate:
    return Gate(**{**dict(row), "request": json.loads(row["request"])})


def _migrate(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied TEXT NOT NULL)")
    done = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
    for name, sql in MIGRATIONS:
        if name in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("SELECT 1 FROM _migrations WHERE name = ?", (name,)).fetchone() is None:
                for statement in filter(str.strip, sql.split(";")):
                    conn.execute(statement)
                conn.execute("INSERT INTO _migrations VALUES (?, ?)", (name, now_iso()))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
