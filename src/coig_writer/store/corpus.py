"""Corpus: source texts with their filter status, the quarantine of unreadable rows, and the
MinHash near-duplicate index (signatures and LSH band keys)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ..records import QuarantineEntry, SourceText
from .db import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
  id TEXT PRIMARY KEY, hash TEXT NOT NULL, status TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS sources_hash ON sources(hash);
CREATE TABLE IF NOT EXISTS quarantine (
  path TEXT NOT NULL, line INTEGER NOT NULL, error TEXT NOT NULL, raw TEXT NOT NULL,
  created_at TEXT NOT NULL, PRIMARY KEY (path, line));
CREATE TABLE IF NOT EXISTS minhash (
  n INTEGER PRIMARY KEY, source_id TEXT NOT NULL UNIQUE, sig BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS minhash_bands (
  key INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (key, n)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS corpus_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_INSERT_SOURCE = "INSERT OR IGNORE INTO sources(id, hash, status, data) VALUES (?,?,?,?)"
_INSERT_QUARANTINE = ("INSERT OR REPLACE INTO quarantine(path, line, error, raw, created_at) "
                      "VALUES (?,?,?,?,?)")


def _quarantine_row(entry: QuarantineEntry) -> tuple[Any, ...]:
    return (entry.path, entry.line if entry.line is not None else 0, entry.error,
            entry.raw[:100_000], entry.created_at)


class CorpusRepo:
    """Source texts, quarantine and the near-duplicate index.

    The batch methods (`insert_source`, `update_source`, `quarantine_row`, `add_minhash`,
    `replace_band_keys`, `clear_minhash`, `set_corpus_meta`) do not commit: call them inside
    `store.transaction()`, which commits a whole batch at once (or nothing, on a kill)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add_source(self, src: SourceText) -> bool:
        """Insert a source text; returns False when its id is already stored."""
        cur = self.db.write(_INSERT_SOURCE, (src.id, src.hash, src.status, src.model_dump_json()))
        return cur.rowcount == 1

    def get_source(self, source_id: str) -> SourceText | None:
        row = self.db.execute("SELECT data FROM sources WHERE id=?", (source_id,)).fetchone()
        return SourceText.model_validate_json(row[0]) if row else None

    def source_digest(self, source_id: str) -> str | None:
        """The content hash of a stored text (None: no such id)."""
        row = self.db.execute("SELECT hash FROM sources WHERE id=?", (source_id,)).fetchone()
        return row[0] if row else None

    def source_with_hash(self, digest: str) -> str | None:
        row = self.db.execute(
            "SELECT id FROM sources WHERE hash=? AND status='ok' LIMIT 1", (digest,)).fetchone()
        return row[0] if row else None

    def iter_sources(self, status: str | None = "ok") -> Iterator[SourceText]:
        for (data,) in self.db.select("SELECT data FROM sources", status=status or None).fetchall():
            yield SourceText.model_validate_json(data)

    def iter_pending_sources(self, prefix: str, limit: int | None = None, redo: bool = False,
                             batch: int = 500) -> Iterator[SourceText]:
        """Ok sources without a triplet `prefix + id`, streamed in batches (one query per
        batch, never one per item; constant memory)."""
        sql = "SELECT rowid, data FROM sources WHERE status='ok' AND rowid > ?"
        if not redo:
            sql += " AND NOT EXISTS (SELECT 1 FROM triplets t WHERE t.id = ? || sources.id)"
        sql += " ORDER BY rowid LIMIT ?"
        last, n = 0, 0
        while limit is None or n < limit:
            args: tuple[Any, ...] = (last, prefix, batch) if not redo else (last, batch)
            rows = self.db.execute(sql, args).fetchall()
            if not rows:
                return
            for rowid, data in rows:
                last = rowid
                yield SourceText.model_validate_json(data)
                n += 1
                if limit is not None and n >= limit:
                    return

    def count_pending_sources(self, prefix: str, redo: bool = False) -> int:
        sql = "SELECT COUNT(*) FROM sources WHERE status='ok'"
        if redo:
            return self.db.execute(sql).fetchone()[0]
        sql += " AND NOT EXISTS (SELECT 1 FROM triplets t WHERE t.id = ? || sources.id)"
        return self.db.execute(sql, (prefix,)).fetchone()[0]

    def count_sources(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT status, COUNT(*) FROM sources GROUP BY status"))

    def insert_source(self, src: SourceText, digest: str | None = None) -> bool:
        """Like `add_source`, without committing; `digest`: `src.hash` when known."""
        cur = self.db.execute(_INSERT_SOURCE, (src.id, digest or src.hash, src.status,
                                               src.model_dump_json()))
        return cur.rowcount == 1

    def update_source(self, src: SourceText) -> None:
        """Rewrite a stored text's status and record, without committing."""
        self.db.execute("UPDATE sources SET status=?, data=? WHERE id=?",
                        (src.status, src.model_dump_json(), src.id))

    def source_page(self, after_rowid: int, limit: int) -> list[tuple[int, SourceText]]:
        """Up to `limit` stored texts after `after_rowid`, in ingest order."""
        rows = self.db.execute("SELECT rowid, data FROM sources WHERE rowid>? ORDER BY rowid "
                               "LIMIT ?", (after_rowid, limit)).fetchall()
        return [(r, SourceText.model_validate_json(d)) for r, d in rows]

    def earlier_ok_with_hash(self, digest: str, before_rowid: int) -> str | None:
        row = self.db.execute("SELECT id FROM sources WHERE hash=? AND status='ok' AND rowid<? "
                              "ORDER BY rowid LIMIT 1", (digest, before_rowid)).fetchone()
        return row[0] if row else None

    # -- quarantine -------------------------------------------------------------------------
    def quarantine(self, entry: QuarantineEntry) -> None:
        self.db.write(_INSERT_QUARANTINE, _quarantine_row(entry))

    def quarantine_row(self, entry: QuarantineEntry) -> None:
        """Like `quarantine`, without committing."""
        self.db.execute(_INSERT_QUARANTINE, _quarantine_row(entry))

    def iter_quarantine(self) -> Iterator[QuarantineEntry]:
        for path, line, error, raw, at in self.db.execute(
                "SELECT path, line, error, raw, created_at FROM quarantine ORDER BY rowid"):
            yield QuarantineEntry(path=path, line=line or None, error=error, raw=raw,
                                  created_at=at)

    # -- near-duplicate index ---------------------------------------------------------------
    def ok_without_minhash(self, limit: int) -> list[SourceText]:
        """Stored `ok` texts that have no MinHash signature yet (older stores, refiltered)."""
        rows = self.db.execute(
            "SELECT s.data FROM sources s LEFT JOIN minhash m ON m.source_id=s.id "
            "WHERE s.status='ok' AND m.n IS NULL ORDER BY s.rowid LIMIT ?", (limit,)).fetchall()
        return [SourceText.model_validate_json(d) for (d,) in rows]

    def minhash_of(self, source_ids: list[str]) -> dict[str, bytes]:
        marks = ",".join("?" * len(source_ids))
        return dict(self.db.execute(
            f"SELECT source_id, sig FROM minhash WHERE source_id IN ({marks})", source_ids))

    def add_minhash(self, source_id: str, sig: bytes, keys: list[int]) -> None:
        """Store a text's signature and its LSH band keys (no commit)."""
        cur = self.db.execute("INSERT OR IGNORE INTO minhash(source_id, sig) VALUES (?,?)",
                              (source_id, sig))
        if cur.rowcount != 1:
            return  # already indexed
        n = cur.lastrowid
        self.db.executemany("INSERT OR IGNORE INTO minhash_bands(key, n) VALUES (?,?)",
                            [(k, n) for k in keys])

    def near_dup_candidates(self, keys: list[int], before_rowid: int | None = None
                            ) -> list[tuple[str, str]]:
        """(id, text) of `ok` texts sharing a band key (stored before `before_rowid`)."""
        marks = ",".join("?" * len(keys))
        sql = ("SELECT DISTINCT s.id, s.data FROM minhash_bands b JOIN minhash m ON m.n=b.n "
               f"JOIN sources s ON s.id=m.source_id WHERE b.key IN ({marks}) AND s.status='ok'")
        params: list[Any] = list(keys)
        if before_rowid is not None:
            sql += " AND s.rowid<?"
            params.append(before_rowid)
        return [(i, json.loads(d)["text"]) for i, d in self.db.execute(sql, params)]

    def minhash_pages(self, limit: int = 5000) -> Iterator[list[tuple[int, bytes]]]:
        """Every stored signature as (n, sig), a page at a time."""
        last = 0
        while rows := self.db.execute("SELECT n, sig FROM minhash WHERE n>? ORDER BY n LIMIT ?",
                                      (last, limit)).fetchall():
            yield rows
            last = rows[-1][0]

    def replace_band_keys(self, rows: list[tuple[int, int]]) -> None:
        """Insert (key, n) band rows (no commit); `clear_minhash(bands_only=True)` first."""
        self.db.executemany("INSERT OR IGNORE INTO minhash_bands(key, n) VALUES (?,?)", rows)

    def clear_minhash(self, bands_only: bool = False) -> None:
        self.db.execute("DELETE FROM minhash_bands")
        if not bands_only:
            self.db.execute("DELETE FROM minhash")

    def count_minhash(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM minhash").fetchone()[0]

    def corpus_meta(self, name: str) -> str | None:
        row = self.db.execute("SELECT value FROM corpus_meta WHERE name=?", (name,)).fetchone()
        return row[0] if row else None

    def set_corpus_meta(self, name: str, value: str) -> None:
        """No commit, like the batch writes."""
        self.db.execute("INSERT OR REPLACE INTO corpus_meta(name, value) VALUES (?,?)",
                        (name, value))
