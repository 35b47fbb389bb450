"""One small SQL layer under the decision store, over SQLite (a file beside the model repo, the
default) or PostgreSQL (a team's server: ``postgresql://...``), so that the store's queries are
written once.

Queries use ``?`` placeholders (turned into psycopg's ``%s`` for PostgreSQL) and portable SQL
(``INSERT ... ON CONFLICT DO NOTHING`` works in both). Every call opens its own short
connection: the store is shared by threads and processes (the run waiting at a gate, the CLI
in another shell, the web page), and on PostgreSQL by several machines. ``transaction(lock)``
serialises the writers of one thing (a gate, the audit log): SQLite's ``BEGIN IMMEDIATE``
takes the whole file, PostgreSQL an advisory lock named by ``lock`` for the transaction.

Schema changes are append-only named migrations, each applied once, under the same lock.
"""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence, Union
from urllib.parse import urlsplit, urlunsplit

from progenitor.errors import UserError

__all__ = ["Database", "Migration", "redact", "is_server_url"]

Migration = tuple[str, Union[str, Callable[[str], str]]]
"""A name and its SQL (or a function of the dialect, ``sqlite`` / ``postgres``, giving it)."""

SCHEMES = ("postgresql://", "postgres://")


def is_server_url(url: Optional[str]) -> bool:
    return bool(url) and str(url).startswith(SCHEMES)


def redact(url: str) -> str:
    """The URL without its password, to be written down (libpq finds it again in PGPASSWORD or ~/.pgpass)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = (f"{parts.username}@" if parts.username else "") + host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _lock_id(name: str) -> int:
    """A signed 64-bit number for ``pg_advisory_xact_lock``, the same in every process."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class Connection:
    """A connection whose ``execute`` takes ``?`` placeholders and returns rows as dicts."""

    def __init__(self, raw: Any, dialect: str):
        self.raw, self.dialect = raw, dialect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> "Rows":
        if self.dialect == "postgres":
            sql = sql.replace("?", "%s")
        return Rows(self.raw.execute(sql, tuple(params)), self.dialect)


class Rows:
    def __init__(self, cursor: Any, dialect: str):
        self.cursor, self.dialect = cursor, dialect

    def fetchone(self) -> Optional[dict]:
        row = self.cursor.fetchone()
        return None if row is None else dict(row)

    def fetchall(self) -> list[dict]:
        return [dict(r) for r in self.cursor.fetchall()]


class Database:
    """A SQLite file (``path``) or a PostgreSQL server (``url``), with its migrations."""

    def __init__(self, target: Union[str, Path], migrations: list[Migration]):
        self.url = str(target) if is_server_url(str(target)) else None
        self.path = None if self.url else Path(target)
        self.dialect = "postgres" if self.url else "sqlite"
        self.migrations = migrations
        self._migrated = False

    def __repr__(self) -> str:
        return f"Database({redact(self.url) if self.url else str(self.path)!r})"

    @property
    def where(self) -> str:
        """Where it is, for a person (no password)."""
        return redact(self.url) if self.url else str(self.path)

    @property
    def integrity_errors(self) -> tuple[type[BaseException], ...]:
        if self.dialect == "sqlite":
            return (sqlite3.IntegrityError,)
        import psycopg

        return (psycopg.IntegrityError,)

    def exists(self) -> bool:
        """Is there anything to read? (Reading a repo without runs creates no file.)"""
        return self.url is not None or self.path.exists()

    def _open(self) -> Any:
        if self.dialect == "sqlite":
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=30000")
            return conn
        try:
            import psycopg
            from psycopg.rows import dict_row
        except ImportError:
            raise UserError("a PostgreSQL store needs psycopg: pip install 'psycopg[binary]'") from None
        try:
            return psycopg.connect(self.url, autocommit=True, row_factory=dict_row, connect_timeout=10)
        except psycopg.OperationalError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"cannot reach the store {self.where}: {first}") from None

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection to a migrated database, closed at the end of the block (autocommit)."""
        raw = self._open()
        try:
            conn = Connection(raw, self.dialect)
            if not self._migrated:
                self._migrate(raw)
                self._migrated = True
            yield conn
        finally:
            raw.close()

    @contextmanager
    def transaction(self, lock: str = "store") -> Iterator[Connection]:
        """One transaction, alone among the writers that take the same ``lock``; committed at
        the end of the block, rolled back on an exception."""
        with self.connect() as conn:
            with self._begin(conn.raw, lock):
                yield conn

    @contextmanager
    def _begin(self, raw: Any, lock: str) -> Iterator[None]:
        if self.dialect == "sqlite":
            raw.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                raw.execute("ROLLBACK")
                raise
            raw.execute("COMMIT")
            return
        with raw.transaction():
            raw.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_id(lock),))
            yield

    def _migrate(self, raw: Any) -> None:
        # Under the lock: PostgreSQL's CREATE TABLE IF NOT EXISTS is not safe against a second
        # process doing the same at once (one of them fails on the catalog's unique index).
        with self._begin(raw, "migrations"):
            raw.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied TEXT NOT NULL)")
        done = {row["name"] for row in Connection(raw, self.dialect).execute("SELECT name FROM _migrations").fetchall()}
        todo = [(n, s) for n, s in self.migrations if n not in done]
        if not todo:
            return
        from progenitor.run.rundir import now_iso

        with self._begin(raw, "migrations"):
            conn = Connection(raw, self.dialect)
            for name, sql in todo:
                if conn.execute("SELECT 1 AS one FROM _migrations WHERE name = ?", (name,)).fetchone():
                    continue  # another process applied it meanwhile
                text = sql(self.dialect) if callable(sql) else sql
                for statement in filter(str.strip, text.split(";")):
                    raw.execute(statement)
                conn.execute("INSERT INTO _migrations VALUES (?, ?)", (name, now_iso()))
