"""The decision store: what waits for a person, what was decided (and by how many), reverts,
the accounts of the people who may decide, shared by every process that touches a model repo
(the run waiting at a gate, the CLI in another shell, the web page, lab tooling through the API).

By default one SQLite file per model repo (``.progenitor/decisions.sqlite``) in WAL mode, so
readers never block the writer and a waiting run can poll it cheaply. For a team, a PostgreSQL
server (``--store postgresql://...``): runs on several machines then share one inbox, one set of
accounts and one audit log (``audit_log``). A decision's key is its gate (``run``, ``gate``): a
gate that needs several approvers collects one approval per person and is decided by the last
one it needs, or by any rejection; the database refuses a second decision, so two decisions
sent at once record exactly one, and the second caller is told which one stands. Schema changes
are append-only named migrations (``database``), applied once each.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Union

from pydantic import BaseModel

from progenitor.errors import AlreadyDecided, UserError
from progenitor.oversight.audit import AuditLog, TableEntries, audit_log, payload_digest
from progenitor.oversight.database import Connection, Database, is_server_url, redact
from progenitor.run.rundir import STATE_DIR, ensure_state_dir, now_iso

if TYPE_CHECKING:
    from progenitor.run.rundir import RunDir

__all__ = ["DecisionStore", "Gate", "Recorded", "Revert", "run_store", "store_url"]


def _serial(dialect: str) -> str:
    return "INTEGER PRIMARY KEY AUTOINCREMENT" if dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"


def _order(dialect: str) -> str:
    """A column that orders rows as they were added (SQLite's own rowid; a sequence on PostgreSQL)."""
    return "rowid" if dialect == "sqlite" else "seq"


def _extra_seq(dialect: str) -> str:
    return "" if dialect == "sqlite" else ", seq BIGSERIAL"


MIGRATIONS = [
    ("001 gates and decisions", lambda d: f"""
        CREATE TABLE gates (
            run TEXT NOT NULL, gate TEXT NOT NULL, kind TEXT NOT NULL, gen INTEGER NOT NULL,
            description TEXT NOT NULL, request TEXT NOT NULL, payload_sha256 TEXT NOT NULL, opened TEXT NOT NULL
            {_extra_seq(d)}, PRIMARY KEY (run, gate));
        CREATE TABLE decisions (
            run TEXT NOT NULL, gate TEXT NOT NULL, type TEXT NOT NULL, response TEXT NOT NULL,
            "by" TEXT NOT NULL, comment TEXT NOT NULL, surface TEXT NOT NULL, decided TEXT NOT NULL,
            applied TEXT {_extra_seq(d)}, PRIMARY KEY (run, gate));
    """),
    ("002 reverts", lambda d: f"""
        CREATE TABLE reverts (
            seq {_serial(d)}, run TEXT NOT NULL, gen INTEGER NOT NULL, "by" TEXT NOT NULL,
            comment TEXT NOT NULL, reverted TEXT NOT NULL, restored TEXT NOT NULL, time TEXT NOT NULL,
            UNIQUE (run, gen));
    """),
    ("003 accounts", """
        CREATE TABLE accounts (
            name TEXT PRIMARY KEY, role TEXT NOT NULL, token_sha256 TEXT NOT NULL UNIQUE,
            created TEXT NOT NULL, created_by TEXT NOT NULL);
    """),
    ("004 approvals", lambda d: f"""
        CREATE TABLE approvals (
            run TEXT NOT NULL, gate TEXT NOT NULL, "by" TEXT NOT NULL, comment TEXT NOT NULL,
            signature TEXT, surface TEXT NOT NULL, time TEXT NOT NULL {_extra_seq(d)},
            PRIMARY KEY (run, gate, "by"));
        ALTER TABLE decisions ADD COLUMN signature TEXT;
        ALTER TABLE decisions ADD COLUMN approvers TEXT NOT NULL DEFAULT '[]';
    """),
    ("005 where gates and runs are", """
        ALTER TABLE gates ADD COLUMN host TEXT NOT NULL DEFAULT '';
        ALTER TABLE gates ADD COLUMN repo TEXT NOT NULL DEFAULT '';
        ALTER TABLE gates ADD COLUMN details TEXT NOT NULL DEFAULT '{}';
        CREATE TABLE runs (
            run TEXT PRIMARY KEY, repo TEXT NOT NULL, host TEXT NOT NULL, task TEXT NOT NULL, created TEXT NOT NULL);
    """),
    ("006 audit log", """
        CREATE TABLE audit (seq INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, hash TEXT NOT NULL, entry TEXT NOT NULL);
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
    host: str = ""
    """The machine whose run waits here."""
    repo: str = ""
    """Its model repo, on that machine."""
    details: dict = {}
    """What the page shows beside the request and the request pins (each candidate's diff text,
    a commit's own; its training curve), so that a page on another machine can show it."""

    @property
    def approvals_needed(self) -> int:
        return int(self.request.get("gate", {}).get("approvals", 1) or 1)


class Recorded(BaseModel):
    """One decision, or one approval of a gate that needs more, as stored."""

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
    signature: Optional[str] = None
    """The decider's SSH signature of the decision's statement (``signatures``), if they signed."""
    approvers: list[str] = []
    """Everyone who approved the gate (several when it needs several)."""
    needed: int = 1
    """Approvals the gate needs."""
    final: bool = True
    """False: an approval recorded, the gate still waits for more."""


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


def store_url(url: Optional[str]) -> Optional[str]:
    """``url`` if it names a server store; None for the default (the repo's SQLite file)."""
    if not url or url in ("sqlite", "default"):
        return None
    if not is_server_url(url):
        raise UserError(f"--store takes a postgresql://user@host/database URL (or nothing, for the repo's own "
                        f"SQLite file), not {redact(url)!r}")
    return url


class DecisionStore:
    """The store of one model repo (its SQLite file), or a team's (``url``: PostgreSQL)."""

    def __init__(self, repo_root: Union[str, Path], url: Optional[str] = None):
        self.repo_root = Path(repo_root)
        self.url = store_url(url)
        self.path = self.repo_root / STATE_DIR / "decisions.sqlite"
        self.db = Database(self.url or self.path, MIGRATIONS)
        self._order = _order(self.db.dialect)

    @property
    def shared(self) -> bool:
        """Is it a server that other machines share?"""
        return self.url is not None

    @property
    def where(self) -> str:
        return self.db.where

    def _connect(self):
        if not self.shared and not self.path.exists():
            ensure_state_dir(self.repo_root)
        return self.db.connect()

    def _transaction(self, lock: str):
        if not self.shared and not self.path.exists():
            ensure_state_dir(self.repo_root)
        return self.db.transaction(lock)

    def _readable(self) -> bool:
        return self.db.exists()

    def audit_log(self, git_root: Optional[Path] = None) -> AuditLog:
        """The audit log that goes with this store: the repo's ``audit.jsonl`` beside its SQLite
        file, or the server's table; each entry's head recorded in ``git_root``'s git."""
        if not self.shared:
            return audit_log(self.repo_root)
        root = git_root if git_root is not None else self.repo_root
        return AuditLog(TableEntries(self.db), git_root=root if (Path(root) / ".git").exists() else None)

    # -- runs -----------------------------------------------------------------------------------
    def claim_run(self, run: str, repo: Path, task: str) -> bool:
        """Register a new run; False when another machine's run has that id already."""
        with self._connect() as db:
            before = db.execute("SELECT repo, host FROM runs WHERE run = ?", (run,)).fetchone()
            if before is not None:
                return before["repo"] == str(repo) and before["host"] == socket.gethostname()
            db.execute("INSERT INTO runs (run, repo, host, task, created) VALUES (?, ?, ?, ?, ?) "
                       "ON CONFLICT DO NOTHING", (run, str(repo), socket.gethostname(), task, now_iso()))
            mine = db.execute("SELECT repo, host FROM runs WHERE run = ?", (run,)).fetchone()
        return mine["repo"] == str(repo) and mine["host"] == socket.gethostname()

    def runs(self) -> list[dict]:
        if not self._readable():
            return []
        with self._connect() as db:
            return db.execute("SELECT * FROM runs ORDER BY created").fetchall()

    # -- gates --------------------------------------------------------------------------------
    def open_gate(self, run: str, request: dict, details: Optional[dict] = None, repo: Optional[Path] = None) -> Gate:
        """Record that ``run`` waits at the gate ``request`` describes (again: the same row)."""
        meta = request["gate"]
        with self._connect() as db:
            db.execute(
                "INSERT INTO gates (run, gate, kind, gen, description, request, payload_sha256, opened, host, repo, "
                "details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (run, meta["id"], meta["kind"], meta["gen"], meta["description"], json.dumps(request, sort_keys=True),
                 payload_digest(request), now_iso(), socket.gethostname(), str(repo or self.repo_root),
                 json.dumps(details or {}, sort_keys=True)))
        return self.gate(run, meta["id"])

    def gate(self, run: str, gate: str) -> Optional[Gate]:
        if not self._readable():
            return None
        with self._connect() as db:
            row = db.execute("SELECT * FROM gates WHERE run = ? AND gate = ?", (run, gate)).fetchone()
        return _gate(row) if row else None

    def gates(self, run: Optional[str] = None) -> list[Gate]:
        if not self._readable():
            return []  # reading creates nothing: a repo without runs stays as it is
        with self._connect() as db:
            rows = db.execute(f"SELECT * FROM gates WHERE CAST(? AS TEXT) IS NULL OR run = ? ORDER BY opened, {self._order}",
                              (run, run)).fetchall()
        return [_gate(r) for r in rows]

    def pending(self, run: Optional[str] = None) -> list[Gate]:
        """Gates nobody has decided yet (some may have approvals and wait for more), oldest first."""
        if not self._readable():
            return []
        with self._connect() as db:
            rows = db.execute(
                "SELECT g.* FROM gates g LEFT JOIN decisions d ON d.run = g.run AND d.gate = g.gate "
                f"WHERE d.gate IS NULL AND (CAST(? AS TEXT) IS NULL OR g.run = ?) ORDER BY g.opened, g.{self._order}",
                (run, run)).fetchall()
        return [_gate(r) for r in rows]

    # -- decisions ----------------------------------------------------------------------------
    def record(self, run: str, gate: str, type: str, response: dict, by: str, comment: str = "",
               surface: str = "api", signature: Optional[str] = None, needed: int = 1) -> Recorded:
        """Store a person's decision for ``gate``. An approval of a gate that needs ``needed`` > 1
        approvers is kept until the last one needed arrives (then the gate is decided; until then
        the result has ``final=False``); any other decision decides the gate at once. A gate
        decided already raises ``AlreadyDecided`` naming the first decision; so does a second
        approval by the same person."""
        with self._transaction(f"gate {run} {gate}") as db:
            first = _decision(db, run, gate)
            if first is not None:
                raise AlreadyDecided(
                    f"{gate} of run {run} was already decided: {first.type} by {_names(first)} at {first.decided}"
                    f" ({first.surface}); that decision stands")
            approvals = _approvals(db, run, gate)
            if type == "approve" and needed > 1:
                if by in approvals:
                    raise AlreadyDecided(f"{by} approved {gate} of run {run} already; it needs {needed} different "
                                         f"approvers and waits for {needed - len(approvals)} more")
                now = now_iso()
                db.execute('INSERT INTO approvals (run, gate, "by", comment, signature, surface, time) '
                           "VALUES (?, ?, ?, ?, ?, ?, ?)", (run, gate, by, comment, signature, surface, now))
                approvals.append(by)
                if len(approvals) < needed:
                    return Recorded(run=run, gate=gate, type=type, response=response, by=by, comment=comment,
                                    surface=surface, decided=now, signature=signature, approvers=approvals,
                                    needed=needed, final=False)
            elif type == "approve":
                approvals = [by]
            response = {**response, "approvers": approvals} if type == "approve" else response
            db.execute('INSERT INTO decisions (run, gate, type, response, "by", comment, surface, decided, applied, '
                       "signature, approvers) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)",
                       (run, gate, type, json.dumps(response, sort_keys=True), by, comment, surface, now_iso(),
                        signature, json.dumps(approvals)))
        recorded = self.decision(run, gate)
        return recorded.model_copy(update={"needed": needed})

    def approvals(self, run: str, gate: str) -> list[dict]:
        """The approvals a gate has so far (who, when, comment, signature)."""
        if not self._readable():
            return []
        with self._connect() as db:
            return db.execute(f"SELECT * FROM approvals WHERE run = ? AND gate = ? ORDER BY time, {self._order}",
                              (run, gate)).fetchall()

    def decision(self, run: str, gate: str) -> Optional[Recorded]:
        if not self._readable():
            return None
        with self._connect() as db:
            return _decision(db, run, gate)

    def mark_applied(self, run: str, gate: str) -> None:
        with self._connect() as db:
            db.execute("UPDATE decisions SET applied = ? WHERE run = ? AND gate = ? AND applied IS NULL",
                       (now_iso(), run, gate))

    # -- reverts ------------------------------------------------------------------------------
    def add_revert(self, run: str, gen: int, by: str, comment: str, reverted: list[str], restored: dict) -> Revert:
        with self._connect() as db:
            try:
                db.execute('INSERT INTO reverts (run, gen, "by", comment, reverted, restored, time) '
                           "VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (run, gen, by, comment, json.dumps(reverted), json.dumps(restored), now_iso()))
            except self.db.integrity_errors:
                raise AlreadyDecided(f"generation {gen} of run {run} was already reverted") from None
        return next(r for r in self.reverts(run) if r.gen == gen)

    def reverts(self, run: str) -> list[Revert]:
        if not self._readable():
            return []
        with self._connect() as db:
            rows = db.execute("SELECT * FROM reverts WHERE run = ? ORDER BY seq", (run,)).fetchall()
        return [Revert(**{**r, "reverted": json.loads(r["reverted"]), "restored": json.loads(r["restored"])})
                for r in rows]

    def fingerprint(self) -> str:
        """Changes whenever a gate, decision, approval or revert is added (the web page polls it)."""
        if not self._readable():
            return "0"
        with self._connect() as db:
            counts = [db.execute(f"SELECT count(*) AS n, max({_order(self.db.dialect) if t != 'reverts' else 'seq'}) "
                                 f"AS last FROM {t}").fetchone() for t in ("gates", "decisions", "reverts", "approvals")]
            applied = db.execute("SELECT count(applied) AS n FROM decisions").fetchone()["n"]
        return "-".join(f"{c['n']}.{c['last']}" for c in counts) + f"-{applied}"


def _names(decided: Recorded) -> str:
    return " and ".join(decided.approvers) if len(decided.approvers) > 1 else decided.by


def _decision(db: Connection, run: str, gate: str) -> Optional[Recorded]:
    row = db.execute("SELECT * FROM decisions WHERE run = ? AND gate = ?", (run, gate)).fetchone()
    if row is None:
        return None
    row.pop("seq", None)
    return Recorded(**{**row, "response": json.loads(row["response"]), "approvers": json.loads(row["approvers"])})


def _approvals(db: Connection, run: str, gate: str) -> list[str]:
    order = "rowid" if db.dialect == "sqlite" else "seq"
    rows = db.execute(f'SELECT "by" FROM approvals WHERE run = ? AND gate = ? ORDER BY time, {order}', (run, gate))
    return [r["by"] for r in rows.fetchall()]


def _gate(row: dict) -> Gate:
    return Gate(**{**row, "request": json.loads(row["request"]), "details": json.loads(row.get("details") or "{}")})


def run_store(run: "RunDir", url: Optional[str] = None) -> DecisionStore:
    """The store of a run: ``url`` when given, else the one the run was started with (its URL is
    kept without a password: libpq finds that in PGPASSWORD or ~/.pgpass), else its repo's file."""
    return DecisionStore(run.repo_root, url or run.meta.get("store"))
