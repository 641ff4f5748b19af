"""The store's SQLite connection: opening (read-write or read-only), schema creation,
migrations of older stores, and transactions. The area repositories run their SQL through it.

Every `write` commits before it returns, so work a caller has been told about survives a
kill -9 (WAL journal); batch writes use `transaction()` and commit a batch at once.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

# Columns added after a table was first released: table -> {column: declaration}.
ADDED_COLUMNS: dict[str, dict[str, str]] = {
    "llm_cache": {"thinking": "TEXT", "finish_reason": "TEXT", "endpoint": "TEXT",
                  "item_id": "TEXT", "stage": "TEXT", "unusable": "TEXT",
                  "logprobs": "TEXT"},
    "sessions": {"last_seen": "REAL"},
    "reviews": {"round": "INTEGER NOT NULL DEFAULT 0", "fields": "TEXT NOT NULL DEFAULT ''"},
}


class StoreError(RuntimeError):
    """A store that cannot be opened as asked (missing, unwritable, not a store)."""


class Database:
    """One SQLite connection in autocommit mode, shared by every area of a store."""

    def __init__(self, path: str | os.PathLike[str], schemas: Iterable[str],
                 readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        if readonly:
            if not self.path.is_file():
                raise StoreError(f"no store at {self.path}")
            self.conn = self._open_readonly()
            self.conn.execute("PRAGMA busy_timeout=30000")
            self.conn.execute("PRAGMA query_only=1")
            return
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA busy_timeout=30000")
        for schema in schemas:
            self.conn.executescript(schema)
        for table, cols in ADDED_COLUMNS.items():
            self._add_columns(table, cols)

    def _open_readonly(self) -> sqlite3.Connection:
        """`mode=ro`; where SQLite cannot create the WAL index next to the file (a read-only
        folder or mount), `immutable=1`: nobody can write there, so nothing changes under us."""
        uri = self.path.resolve().as_uri()
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, check_same_thread=False,
                               isolation_level=None)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError:
            conn.close()
        return sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, check_same_thread=False,
                               isolation_level=None)

    def _add_columns(self, table: str, columns: dict[str, str]) -> None:
        """Add the columns a store created by an older version lacks."""
        have = {r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")}
        for name, decl in columns.items():
            if name not in have:
                self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")

    def close(self) -> None:
        self.conn.close()

    def execute(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        """One statement (committed at once unless inside `transaction()`)."""
        return self.conn.execute(sql, tuple(params))

    def executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> sqlite3.Cursor:
        return self.conn.executemany(sql, rows)

    def write(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        """One statement in its own transaction, committed before returning."""
        with self.conn:
            return self.conn.execute(sql, tuple(params))

    def select(self, sql: str, order: str = "rowid", **filters: object) -> sqlite3.Cursor:
        """`sql` with an equality WHERE clause for each filter that is not None."""
        used = {k: v for k, v in filters.items() if v is not None}
        where = " WHERE " + " AND ".join(f"{k}=?" for k in used) if used else ""
        return self.conn.execute(f"{sql}{where} ORDER BY {order}", tuple(used.values()))

    @contextlib.contextmanager
    def transaction(self, commit: bool = True) -> Iterator[sqlite3.Connection]:
        """An explicit transaction (BEGIN IMMEDIATE); rolled back on an error, or at the end
        when `commit` is False (dry runs)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT" if commit else "ROLLBACK")
