"""Embedded SQLite store: corpus, stage results, triplets, LLM request cache, runs, quarantine.

This is the one module that knows SQL. Every write commits before it returns, so work that a
caller has been told about survives a kill -9 (WAL journal); the corpus batch writes are the
exception: they commit a batch at once inside `transaction()`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .records import (
    EvalPrompt,
    Generation,
    Judgment,
    QuarantineEntry,
    RubricScore,
    SourceText,
    StageResult,
    Triplet,
    utcnow,
)

DEFAULT_DB = "coig-writer.sqlite"
_CACHE_COLS = ("key, model, request, response, usage, latency_s, created_at, thinking, "
               "finish_reason, endpoint, item_id, stage, unusable")

# One schema string per area, so each area's tables stay together. All are applied on open;
# new columns of existing tables are added by `_add_columns` (old stores keep working).
SCHEMA_CORPUS = """
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

SCHEMA_LLM = """
CREATE TABLE IF NOT EXISTS llm_cache (
  key TEXT PRIMARY KEY, model TEXT NOT NULL, request TEXT NOT NULL, response TEXT NOT NULL,
  usage TEXT, latency_s REAL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batch_requests (
  key TEXT PRIMARY KEY, model TEXT NOT NULL, request TEXT NOT NULL, item_id TEXT, stage TEXT,
  wave TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY, kind TEXT NOT NULL, config TEXT NOT NULL, started_at TEXT NOT NULL,
  finished_at TEXT, summary TEXT);
"""

SCHEMA_CONSTRUCT = """
CREATE TABLE IF NOT EXISTS stage_results (
  item_id TEXT NOT NULL, stage TEXT NOT NULL, round INTEGER NOT NULL, data TEXT NOT NULL,
  PRIMARY KEY (item_id, stage, round));
CREATE TABLE IF NOT EXISTS triplets (
  id TEXT PRIMARY KEY, status TEXT NOT NULL, category TEXT, genre TEXT, data TEXT NOT NULL,
  updated_at TEXT NOT NULL);
"""

SCHEMA_EVAL = """
CREATE TABLE IF NOT EXISTS eval_prompts (
  id TEXT PRIMARY KEY, set_name TEXT NOT NULL, lang TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS generations (
  model TEXT NOT NULL, prompt_id TEXT NOT NULL, data TEXT NOT NULL,
  PRIMARY KEY (model, prompt_id));
CREATE TABLE IF NOT EXISTS judgments (
  key TEXT PRIMARY KEY, prompt_id TEXT NOT NULL, kind TEXT NOT NULL, source TEXT NOT NULL,
  judge TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rubric_scores (
  key TEXT PRIMARY KEY, prompt_id TEXT NOT NULL, model TEXT NOT NULL, judge TEXT NOT NULL,
  data TEXT NOT NULL);
"""

SCHEMA_REVIEW = """
CREATE TABLE IF NOT EXISTS users (
  username TEXT PRIMARY KEY, pw_hash TEXT NOT NULL, role TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
  token_hash TEXT PRIMARY KEY, username TEXT NOT NULL, csrf TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS assignments (
  item_id TEXT NOT NULL, reviewer TEXT NOT NULL, created_at TEXT NOT NULL,
  PRIMARY KEY (item_id, reviewer));
CREATE TABLE IF NOT EXISTS reviews (
  id INTEGER PRIMARY KEY AUTOINCREMENT, item_id TEXT NOT NULL, reviewer TEXT NOT NULL,
  decision TEXT NOT NULL, reason TEXT NOT NULL, version INTEGER NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS triplet_versions (
  item_id TEXT NOT NULL, version INTEGER NOT NULL, editor TEXT NOT NULL, data TEXT NOT NULL,
  diff TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (item_id, version));
CREATE TABLE IF NOT EXISTS login_failures (kind TEXT NOT NULL, key TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS login_failures_key ON login_failures(kind, key, at);
CREATE TABLE IF NOT EXISTS login_tokens (token_hash TEXT PRIMARY KEY, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS audit_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
  item_id TEXT, detail TEXT NOT NULL, address TEXT);
CREATE TABLE IF NOT EXISTS refinements (
  id INTEGER PRIMARY KEY AUTOINCREMENT, item_id TEXT NOT NULL, round INTEGER NOT NULL,
  review_id INTEGER NOT NULL, reviewer TEXT NOT NULL, feedback TEXT NOT NULL, fields TEXT NOT NULL,
  from_version INTEGER NOT NULL, before TEXT NOT NULL, to_version INTEGER, status TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '', model TEXT, cache_keys TEXT NOT NULL DEFAULT '[]',
  attempts INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, finished_at TEXT,
  UNIQUE (item_id, round));
CREATE TABLE IF NOT EXISTS guidelines (
  genre TEXT PRIMARY KEY, text TEXT NOT NULL, editor TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS review_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

SCHEMA_USEFULNESS = """
CREATE TABLE IF NOT EXISTS usefulness (
  triplet_id TEXT NOT NULL, version INTEGER NOT NULL, scorer TEXT NOT NULL,
  template_hash TEXT NOT NULL, settings TEXT NOT NULL, genre TEXT, data TEXT NOT NULL,
  created_at TEXT NOT NULL, PRIMARY KEY (triplet_id, version, scorer, template_hash, settings));
"""

SCHEMAS = (SCHEMA_CORPUS, SCHEMA_LLM, SCHEMA_CONSTRUCT, SCHEMA_EVAL, SCHEMA_REVIEW,
           SCHEMA_USEFULNESS)

# Columns added after a table was first released: table -> {column: declaration}.
ADDED_COLUMNS: dict[str, dict[str, str]] = {
    "llm_cache": {"thinking": "TEXT", "finish_reason": "TEXT", "endpoint": "TEXT",
                  "item_id": "TEXT", "stage": "TEXT", "unusable": "TEXT"},
    "sessions": {"last_seen": "REAL"},
    "reviews": {"round": "INTEGER NOT NULL DEFAULT 0", "fields": "TEXT NOT NULL DEFAULT ''"},
}
INDEXES = """
CREATE INDEX IF NOT EXISTS llm_cache_item ON llm_cache(item_id);
"""

# Tables whose rows a worker's shard store hands back to the project store (see `merge_from`):
# table -> True when an existing row wins (a cache answer never changes), False when replaced.
MERGED_TABLES = {"llm_cache": True, "stage_results": False, "triplets": False,
                 "generations": False, "judgments": False, "rubric_scores": False}


class Store:
    """A project store in one SQLite file (created on first use)."""

    def __init__(self, path: str | os.PathLike[str] = DEFAULT_DB):
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=30000")
        for schema in SCHEMAS:
            self.db.executescript(schema)
        for table, cols in ADDED_COLUMNS.items():
            self._add_columns(table, cols)
        self.db.executescript(INDEXES)

    def _add_columns(self, table: str, columns: dict[str, str]) -> None:
        """Add the columns a store created by an older version lacks."""
        have = {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}
        for name, decl in columns.items():
            if name not in have:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _select(self, sql: str, order: str = "rowid", **filters: object) -> sqlite3.Cursor:
        """`sql` with an equality WHERE clause for each filter that is not None."""
        used = {k: v for k, v in filters.items() if v is not None}
        where = " WHERE " + " AND ".join(f"{k}=?" for k in used) if used else ""
        return self.db.execute(f"{sql}{where} ORDER BY {order}", tuple(used.values()))

    @contextlib.contextmanager
    def transaction(self, commit: bool = True) -> Iterator[sqlite3.Connection]:
        """An explicit transaction (the connection autocommits otherwise); rolled back on an
        error, or at the end when `commit` is False (dry runs)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT" if commit else "ROLLBACK")

    def _write(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        with self.db:  # one transaction, committed on exit
            return self.db.execute(sql, tuple(params))

    # -- corpus -----------------------------------------------------------------------------
    def add_source(self, src: SourceText) -> bool:
        """Insert a source text; returns False when its id is already stored."""
        cur = self._write(
            "INSERT OR IGNORE INTO sources(id, hash, status, data) VALUES (?,?,?,?)",
            (src.id, src.hash, src.status, src.model_dump_json()),
        )
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
        for (data,) in self._select("SELECT data FROM sources", status=status or None).fetchall():
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

    # Batched corpus writes: the methods below do not commit; call them inside
    # `transaction()`, which commits a whole batch at once (or nothing, on a kill).
    def insert_source(self, src: SourceText, digest: str | None = None) -> bool:
        """Like `add_source`, without committing; `digest`: `src.hash` when known."""
        cur = self.db.execute(
            "INSERT OR IGNORE INTO sources(id, hash, status, data) VALUES (?,?,?,?)",
            (src.id, digest or src.hash, src.status, src.model_dump_json()))
        return cur.rowcount == 1

    def update_source(self, src: SourceText) -> None:
        """Rewrite a stored text's status and record, without committing."""
        self.db.execute("UPDATE sources SET status=?, data=? WHERE id=?",
                        (src.status, src.model_dump_json(), src.id))

    def quarantine_row(self, entry: QuarantineEntry) -> None:
        """Like `quarantine`, without committing."""
        self.db.execute(
            "INSERT OR REPLACE INTO quarantine(path, line, error, raw, created_at) "
            "VALUES (?,?,?,?,?)",
            (entry.path, entry.line if entry.line is not None else 0, entry.error,
             entry.raw[:100_000], entry.created_at))

    def source_page(self, after_rowid: int, limit: int) -> list[tuple[int, SourceText]]:
        """Up to `limit` stored texts after `after_rowid`, in ingest order."""
        rows = self.db.execute("SELECT rowid, data FROM sources WHERE rowid>? ORDER BY rowid "
                               "LIMIT ?", (after_rowid, limit)).fetchall()
        return [(r, SourceText.model_validate_json(d)) for r, d in rows]

    def earlier_ok_with_hash(self, digest: str, before_rowid: int) -> str | None:
        row = self.db.execute("SELECT id FROM sources WHERE hash=? AND status='ok' AND rowid<? "
                              "ORDER BY rowid LIMIT 1", (digest, before_rowid)).fetchone()
        return row[0] if row else None

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

    # -- quarantine -------------------------------------------------------------------------
    def quarantine(self, entry: QuarantineEntry) -> None:
        self._write(
            "INSERT OR REPLACE INTO quarantine(path, line, error, raw, created_at) "
            "VALUES (?,?,?,?,?)",
            (entry.path, entry.line if entry.line is not None else 0, entry.error,
             entry.raw[:100_000], entry.created_at),
        )

    def iter_quarantine(self) -> Iterator[QuarantineEntry]:
        for path, line, error, raw, at in self.db.execute(
                "SELECT path, line, error, raw, created_at FROM quarantine ORDER BY rowid"):
            yield QuarantineEntry(path=path, line=line or None, error=error, raw=raw,
                                  created_at=at)

    # -- LLM cache --------------------------------------------------------------------------
    def cache_get(self, key: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT response, usage, thinking, finish_reason, unusable FROM llm_cache WHERE key=?",
            (key,)).fetchone()
        if not row:
            return None
        return {"text": row[0], "usage": json.loads(row[1]) if row[1] else None,
                "thinking": row[2] or "", "finish_reason": row[3], "unusable": row[4]}

    def cache_put(self, key: str, model: str, request: dict[str, Any], text: str,
                  usage: dict[str, Any] | None, latency_s: float, *, thinking: str = "",
                  finish_reason: str | None = None, endpoint: str | None = None,
                  item_id: str | None = None, stage: str | None = None) -> None:
        self._write(
            "INSERT OR IGNORE INTO llm_cache(key, model, request, response, usage, latency_s, "
            "created_at, thinking, finish_reason, endpoint, item_id, stage) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (key, model, json.dumps(request, ensure_ascii=False), text,
             json.dumps(usage) if usage else None, latency_s, utcnow(), thinking or None,
             finish_reason, endpoint, item_id, stage),
        )

    def cache_mark_unusable(self, key: str, reason: str) -> None:
        """Record that the completion policy rejected this answer (it stays for the record)."""
        self._write("UPDATE llm_cache SET unusable=? WHERE key=?", (reason[:1000], key))

    def cache_count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM llm_cache").fetchone()[0]

    def cache_rows_for_items(self, item_ids: list[str]) -> list[tuple[Any, ...]]:
        """Every cached answer made for these items, as rows for `put_cache_rows`."""
        out: list[tuple[Any, ...]] = []
        for i in range(0, len(item_ids), 500):
            chunk = item_ids[i:i + 500]
            out += self.db.execute(
                f"SELECT {_CACHE_COLS} FROM llm_cache WHERE item_id IN "
                f"({','.join('?' * len(chunk))})", chunk).fetchall()
        return out

    def put_cache_rows(self, rows: list[tuple[Any, ...]]) -> None:
        with self.transaction():
            self.db.executemany(f"INSERT OR IGNORE INTO llm_cache({_CACHE_COLS}) VALUES "
                                f"({','.join('?' * len(_CACHE_COLS.split(',')))})", rows)

    def put_batch_requests(self, rows: list[tuple[Any, ...]]) -> None:
        """(key, model, request JSON, item_id, stage, wave file) of requests sent as a batch."""
        with self.transaction():
            self.db.executemany("INSERT OR IGNORE INTO batch_requests(key, model, request, item_id, "
                                "stage, wave) VALUES (?,?,?,?,?,?)", rows)

    def batch_request(self, key: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT model, request, item_id, stage, wave FROM batch_requests "
                              "WHERE key=?", (key,)).fetchone()
        if not row:
            return None
        return {"model": row[0], "request": json.loads(row[1]), "item_id": row[2],
                "stage": row[3], "wave": row[4]}

    def merge_from(self, path: str | os.PathLike[str]) -> dict[str, int]:
        """Copy a shard store's results into this store in one transaction (idempotent: cache
        rows are kept when present, result rows replaced). Returns rows copied per table."""
        counts: dict[str, int] = {}
        self.db.execute("ATTACH DATABASE ? AS shard", (str(path),))
        try:
            with self.transaction():
                for table, keep in MERGED_TABLES.items():
                    cols = [r[1] for r in self.db.execute(f"PRAGMA shard.table_info({table})")]
                    if not cols:
                        continue
                    names = ", ".join(cols)
                    verb = "INSERT OR IGNORE" if keep else "INSERT OR REPLACE"
                    cur = self.db.execute(f"{verb} INTO main.{table}({names}) "
                                          f"SELECT {names} FROM shard.{table}")
                    counts[table] = cur.rowcount
        finally:
            self.db.execute("DETACH DATABASE shard")
        return counts

    def cache_rows(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT key, model, request, response, latency_s FROM llm_cache ORDER BY rowid")
        return [{"key": k, "model": m, "request": json.loads(r), "response": t, "latency_s": s}
                for k, m, r, t, s in rows]

    # -- stage results ----------------------------------------------------------------------
    def put_stage(self, result: StageResult) -> None:
        self._write(
            "INSERT OR REPLACE INTO stage_results(item_id, stage, round, data) VALUES (?,?,?,?)",
            (result.item_id, result.stage, result.round, result.model_dump_json()),
        )

    def stages_for(self, item_id: str) -> list[StageResult]:
        rows = self.db.execute(
            "SELECT data FROM stage_results WHERE item_id=? ORDER BY round, rowid", (item_id,))
        return [StageResult.model_validate_json(d) for (d,) in rows]

    # -- triplets ---------------------------------------------------------------------------
    def put_triplet(self, t: Triplet) -> None:
        t.updated_at = utcnow()
        self._write(
            "INSERT OR REPLACE INTO triplets(id, status, category, genre, data, updated_at) "
            "VALUES (?,?,?,?,?,?)",
            (t.id, t.status, t.category, t.genre, t.model_dump_json(), t.updated_at),
        )

    def get_triplet(self, triplet_id: str) -> Triplet | None:
        row = self.db.execute("SELECT data FROM triplets WHERE id=?", (triplet_id,)).fetchone()
        return Triplet.model_validate_json(row[0]) if row else None

    def has_triplet(self, triplet_id: str) -> bool:
        return self.db.execute(
            "SELECT 1 FROM triplets WHERE id=?", (triplet_id,)).fetchone() is not None

    def iter_triplets(self, status: str | None = None) -> Iterator[Triplet]:
        for (data,) in self._select("SELECT data FROM triplets", status=status or None).fetchall():
            yield Triplet.model_validate_json(data)

    def count_triplets(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT status, COUNT(*) FROM triplets GROUP BY status"))

    # -- evaluation -------------------------------------------------------------------------
    def put_eval_prompt(self, p: EvalPrompt) -> None:
        self._write("INSERT OR REPLACE INTO eval_prompts(id, set_name, lang, data) VALUES (?,?,?,?)",
                    (p.id, p.set_name, p.lang, p.model_dump_json()))

    def eval_prompts(self, set_name: str | None = None, lang: str | None = None) -> list[EvalPrompt]:
        rows = self._select("SELECT data FROM eval_prompts", set_name=set_name or None,
                            lang=lang or None)
        return [EvalPrompt.model_validate_json(d) for (d,) in rows]

    def get_eval_prompt(self, prompt_id: str) -> EvalPrompt | None:
        row = self.db.execute("SELECT data FROM eval_prompts WHERE id=?", (prompt_id,)).fetchone()
        return EvalPrompt.model_validate_json(row[0]) if row else None

    def put_generation(self, g: Generation) -> None:
        self._write("INSERT OR REPLACE INTO generations(model, prompt_id, data) VALUES (?,?,?)",
                    (g.model, g.prompt_id, g.model_dump_json()))

    def generations(self, model: str | None = None, prompt_id: str | None = None
                    ) -> list[Generation]:
        rows = self._select("SELECT data FROM generations", model=model or None,
                            prompt_id=prompt_id)
        return [Generation.model_validate_json(d) for (d,) in rows]

    def has_generation(self, model: str, prompt_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM generations WHERE model=? AND prompt_id=?",
                               (model, prompt_id)).fetchone() is not None

    def put_judgment(self, j: Judgment) -> None:
        self._write("INSERT OR REPLACE INTO judgments(key, prompt_id, kind, source, judge, data) "
                    "VALUES (?,?,?,?,?,?)", (j.key, j.prompt_id, j.kind, j.source, j.judge,
                                             j.model_dump_json()))

    def judgments(self, source: str | None = None, judge: str | None = None) -> list[Judgment]:
        rows = self._select("SELECT data FROM judgments", source=source or None,
                            judge=judge or None)
        return [Judgment.model_validate_json(d) for (d,) in rows]

    def has_judgment(self, key: str) -> bool:
        return self.db.execute("SELECT 1 FROM judgments WHERE key=?", (key,)).fetchone() is not None

    def put_rubric_score(self, r: RubricScore) -> None:
        self._write("INSERT OR REPLACE INTO rubric_scores(key, prompt_id, model, judge, data) "
                    "VALUES (?,?,?,?,?)", (r.key, r.prompt_id, r.model, r.judge,
                                           r.model_dump_json()))

    def rubric_scores(self, judge: str | None = None, model: str | None = None
                      ) -> list[RubricScore]:
        rows = self._select("SELECT data FROM rubric_scores", judge=judge or None,
                            model=model or None)
        return [RubricScore.model_validate_json(d) for (d,) in rows]

    def has_rubric_score(self, key: str) -> bool:
        return self.db.execute("SELECT 1 FROM rubric_scores WHERE key=?",
                               (key,)).fetchone() is not None

    def add_eval_prompt(self, p: EvalPrompt) -> bool:
        """Insert a prompt unless its id is stored; returns whether it was added."""
        cur = self._write("INSERT OR IGNORE INTO eval_prompts(id, set_name, lang, data) "
                          "VALUES (?,?,?,?)", (p.id, p.set_name, p.lang, p.model_dump_json()))
        return cur.rowcount == 1

    # -- review: users, sessions, assignments, decisions, versions -----------------------------
    def add_user(self, username: str, pw_hash: str, role: str) -> bool:
        """Create or reset a user; a reset (new password or role) ends the user's sessions.
        Returns True when the user already existed."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            existed = self.db.execute("SELECT 1 FROM users WHERE username=?",
                                      (username,)).fetchone() is not None
            self.db.execute("INSERT OR REPLACE INTO users(username, pw_hash, role, created_at) "
                            "VALUES (?,?,?,?)", (username, pw_hash, role, utcnow()))
            self.db.execute("DELETE FROM sessions WHERE username=?", (username,))
        return existed

    def get_user(self, username: str) -> dict[str, str] | None:
        row = self.db.execute("SELECT username, pw_hash, role FROM users WHERE username=?",
                              (username,)).fetchone()
        return {"username": row[0], "pw_hash": row[1], "role": row[2]} if row else None

    def users(self, role: str | None = None) -> list[dict[str, str]]:
        rows = self._select("SELECT username, role FROM users", "username", role=role or None)
        return [{"username": u, "role": r} for u, r in rows]

    def put_session(self, token_hash: str, username: str, csrf: str, expires: float,
                    now: float) -> None:
        self._write("INSERT INTO sessions(token_hash, username, csrf, expires, last_seen) "
                    "VALUES (?,?,?,?,?)", (token_hash, username, csrf, expires, now))

    def get_session(self, token_hash: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT username, csrf, expires, last_seen FROM sessions "
                              "WHERE token_hash=?", (token_hash,)).fetchone()
        return ({"username": row[0], "csrf": row[1], "expires": row[2], "last_seen": row[3]}
                if row else None)

    def touch_session(self, token_hash: str, now: float) -> None:
        self._write("UPDATE sessions SET last_seen=? WHERE token_hash=?", (now, token_hash))

    def delete_session(self, token_hash: str) -> None:
        self._write("DELETE FROM sessions WHERE token_hash=?", (token_hash,))

    def purge_sessions(self, now: float, idle_s: float) -> int:
        """Delete expired and idle sessions; returns how many."""
        return self._write("DELETE FROM sessions WHERE expires<? OR COALESCE(last_seen, 0)<?",
                           (now, now - idle_s)).rowcount

    def count_sessions(self, username: str | None = None) -> int:
        return len(list(self._select("SELECT 1 FROM sessions", username=username)))

    def add_login_failure(self, kind: str, key: str, at: float) -> None:
        self._write("INSERT INTO login_failures(kind, key, at) VALUES (?,?,?)", (kind, key, at))

    def login_failures(self, kind: str, key: str, since: float) -> list[float]:
        rows = self.db.execute("SELECT at FROM login_failures WHERE kind=? AND key=? AND at>=? "
                               "ORDER BY at", (kind, key, since))
        return [r[0] for r in rows]

    def clear_login_failures(self, kind: str, key: str) -> None:
        self._write("DELETE FROM login_failures WHERE kind=? AND key=?", (kind, key))

    def purge_login_failures(self, before: float) -> None:
        self._write("DELETE FROM login_failures WHERE at<?", (before,))

    def put_login_token(self, token_hash: str, expires: float, now: float,
                        keep: int = 10_000) -> None:
        """Store a login form token; expired ones go, and at most `keep` stay (oldest go)."""
        with self.db:
            self.db.execute("DELETE FROM login_tokens WHERE expires<?", (now,))
            self.db.execute("INSERT OR REPLACE INTO login_tokens(token_hash, expires) "
                            "VALUES (?,?)", (token_hash, expires))
            self.db.execute("DELETE FROM login_tokens WHERE token_hash NOT IN (SELECT token_hash "
                            "FROM login_tokens ORDER BY expires DESC LIMIT ?)", (keep,))

    def take_login_token(self, token_hash: str, now: float) -> bool:
        """Consume a login form token; True once for a token that exists and has not expired."""
        with self.db:
            self.db.execute("DELETE FROM login_tokens WHERE expires<?", (now,))
            return self.db.execute("DELETE FROM login_tokens WHERE token_hash=?",
                                   (token_hash,)).rowcount == 1

    def audit(self, actor: str, action: str, item_id: str | None = None, detail: str = "",
              address: str | None = None) -> None:
        self._write("INSERT INTO audit_log(at, actor, action, item_id, detail, address) "
                    "VALUES (?,?,?,?,?,?)", (utcnow(), actor, action, item_id, detail, address))

    def audit_log(self, action: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        keys = ("id", "at", "actor", "action", "item_id", "detail", "address")
        rows = self._select(f"SELECT {', '.join(keys)} FROM audit_log", "id DESC",
                            action=action).fetchmany(limit)
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def assign(self, item_id: str, reviewer: str) -> bool:
        cur = self._write("INSERT OR IGNORE INTO assignments(item_id, reviewer, created_at) "
                          "VALUES (?,?,?)", (item_id, reviewer, utcnow()))
        return cur.rowcount == 1

    def assignments(self, reviewer: str | None = None,
                    item_id: str | None = None) -> list[tuple[str, str]]:
        return list(self._select("SELECT item_id, reviewer FROM assignments",
                                 reviewer=reviewer or None, item_id=item_id))

    def add_review(self, item_id: str, reviewer: str, decision: str, reason: str,
                   version: int, round: int = 0, fields: str = "") -> int:
        cur = self._write("INSERT INTO reviews(item_id, reviewer, decision, reason, version, "
                          "created_at, round, fields) VALUES (?,?,?,?,?,?,?,?)",
                          (item_id, reviewer, decision, reason, version, utcnow(), round, fields))
        return int(cur.lastrowid or 0)

    def reviews(self, item_id: str | None = None) -> list[dict[str, Any]]:
        keys = ("id", "item_id", "reviewer", "decision", "reason", "version", "created_at",
                "round", "fields")
        rows = self._select(f"SELECT {', '.join(keys)} FROM reviews", "id", item_id=item_id or None)
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def triplet_version(self, item_id: str) -> int:
        row = self.db.execute("SELECT MAX(version) FROM triplet_versions WHERE item_id=?",
                              (item_id,)).fetchone()
        return row[0] or 0

    def save_edit(self, t: Triplet, expected_version: int, editor: str, diff: str) -> int | None:
        """Store `t` as the next version if the current one is still `expected_version`;
        None (nothing written) when someone else saved first."""
        t.updated_at = utcnow()
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            row = self.db.execute("SELECT MAX(version) FROM triplet_versions WHERE item_id=?",
                                  (t.id,)).fetchone()
            if (row[0] or 0) != expected_version:
                return None
            self.db.execute("INSERT INTO triplet_versions(item_id, version, editor, data, diff, "
                            "created_at) VALUES (?,?,?,?,?,?)", (t.id, expected_version + 1, editor,
                                                                 t.model_dump_json(), diff, utcnow()))
            self.db.execute("UPDATE triplets SET status=?, data=?, updated_at=? WHERE id=?",
                            (t.status, t.model_dump_json(), t.updated_at, t.id))
        return expected_version + 1

    def versions(self, item_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT version, editor, diff, created_at FROM triplet_versions "
                               "WHERE item_id=? ORDER BY version", (item_id,))
        return [{"version": v, "editor": e, "diff": d, "created_at": c} for v, e, d, c in rows]

    def version_data(self, item_id: str, version: int) -> Triplet | None:
        """The triplet as saved in `version` (None for version 0 or an unknown one)."""
        row = self.db.execute("SELECT data FROM triplet_versions WHERE item_id=? AND version=?",
                              (item_id, version)).fetchone()
        return Triplet.model_validate_json(row[0]) if row else None

    # review: refinement requests (send back -> model refines -> re-review)
    _REF_KEYS = ("id", "item_id", "round", "review_id", "reviewer", "feedback", "fields",
                 "from_version", "before", "to_version", "status", "reason", "model",
                 "cache_keys", "attempts", "created_at", "finished_at")

    def _ref(self, row: tuple[Any, ...]) -> dict[str, Any]:
        d = dict(zip(self._REF_KEYS, row, strict=True))
        d["fields"], d["cache_keys"] = json.loads(d["fields"]), json.loads(d["cache_keys"])
        return d

    def send_back(self, t: Triplet, reviewer: str, feedback: str, fields: list[str],
                  version: int, round: int) -> int | None:
        """Record a send-back decision and its refinement request, and mark the item
        `refining`, in one transaction; None when the item changed (version) or was already
        sent back in this round."""
        before = t.model_dump_json()
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            row = self.db.execute("SELECT MAX(version) FROM triplet_versions WHERE item_id=?",
                                  (t.id,)).fetchone()
            taken = self.db.execute("SELECT 1 FROM refinements WHERE item_id=? AND round=?",
                                    (t.id, round + 1)).fetchone()
            if (row[0] or 0) != version or taken:
                return None
            cur = self.db.execute(
                "INSERT INTO reviews(item_id, reviewer, decision, reason, version, created_at, "
                "round, fields) VALUES (?,?,?,?,?,?,?,?)",
                (t.id, reviewer, "send_back", feedback, version, utcnow(), round,
                 ",".join(fields)))
            review_id = cur.lastrowid
            self.db.execute(
                "INSERT INTO refinements(item_id, round, review_id, reviewer, feedback, fields, "
                "from_version, before, status, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (t.id, round + 1, review_id, reviewer, feedback, json.dumps(fields), version,
                 before, "pending", utcnow()))
            t.status = "refining"
            t.updated_at = utcnow()
            self.db.execute("UPDATE triplets SET status=?, data=?, updated_at=? WHERE id=?",
                            (t.status, t.model_dump_json(), t.updated_at, t.id))
        return int(review_id or 0)

    def refinements(self, item_id: str | None = None,
                    status: str | None = None) -> list[dict[str, Any]]:
        rows = self._select(f"SELECT {', '.join(self._REF_KEYS)} FROM refinements", "id",
                            item_id=item_id, status=status)
        return [self._ref(r) for r in rows]

    def review_rounds(self) -> dict[str, int]:
        """item -> finished refinements (its current review round), for items with any."""
        return dict(self.db.execute("SELECT item_id, COUNT(*) FROM refinements WHERE status IN "
                                    "('done', 'failed') GROUP BY item_id"))

    def triplet_heads(self, ids: list[str] | None = None) -> list[tuple[str, str, str | None,
                                                                       str | None]]:
        """(id, status, category, genre) of triplets without reading their texts."""
        if ids is None:
            return list(self.db.execute("SELECT id, status, category, genre FROM triplets "
                                        "ORDER BY rowid"))
        out: list[tuple[str, str, str | None, str | None]] = []
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            out += self.db.execute("SELECT id, status, category, genre FROM triplets WHERE id IN "
                                   f"({','.join('?' * len(chunk))})", chunk).fetchall()
        return out

    def review_round(self, item_id: str) -> int:
        """How many refinements of the item have finished (the current review round)."""
        row = self.db.execute("SELECT COUNT(*) FROM refinements WHERE item_id=? AND status IN "
                              "('done', 'failed')", (item_id,)).fetchone()
        return int(row[0])

    def refinement_attempt(self, ref_id: int, error: str | None = None) -> None:
        """Count a start of work on a refinement (and the transient error that ended it)."""
        if error is None:
            self._write("UPDATE refinements SET attempts=attempts+1, status='running' WHERE id=?",
                        (ref_id,))
        else:
            self._write("UPDATE refinements SET reason=?, status='pending' WHERE id=?",
                        (error, ref_id))

    def finish_refinement(self, ref_id: int, t: Triplet | None, editor: str, diff: str,
                          status: str, reason: str, model: str | None,
                          cache_keys: list[str]) -> int | None:
        """Store the refined triplet as the item's next version (if any) and close the request,
        in one transaction. Idempotent: a request already finished writes nothing again.
        Returns the new version (None when no version was written)."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            row = self.db.execute("SELECT item_id, status, to_version FROM refinements WHERE id=?",
                                  (ref_id,)).fetchone()
            if row is None:
                raise KeyError(ref_id)
            if row[1] in ("done", "failed"):
                return row[2]
            new_version = None
            if t is not None:
                t.updated_at = utcnow()
                cur = self.db.execute("SELECT MAX(version) FROM triplet_versions WHERE item_id=?",
                                      (row[0],)).fetchone()
                new_version = (cur[0] or 0) + 1
                self.db.execute(
                    "INSERT INTO triplet_versions(item_id, version, editor, data, diff, "
                    "created_at) VALUES (?,?,?,?,?,?)",
                    (row[0], new_version, editor, t.model_dump_json(), diff, utcnow()))
                self.db.execute("UPDATE triplets SET status=?, data=?, updated_at=? WHERE id=?",
                                (t.status, t.model_dump_json(), t.updated_at, row[0]))
            else:
                cur_t = self.get_triplet(row[0])
                if cur_t is not None:
                    cur_t.status = "needs_review"
                    cur_t.reasons.append(f"refinement failed: {reason}")
                    self.db.execute("UPDATE triplets SET status=?, data=?, updated_at=? "
                                    "WHERE id=?", (cur_t.status, cur_t.model_dump_json(),
                                                   utcnow(), row[0]))
            self.db.execute(
                "UPDATE refinements SET status=?, reason=?, to_version=?, model=?, cache_keys=?, "
                "finished_at=? WHERE id=?", (status, reason, new_version, model,
                                             json.dumps(cache_keys), utcnow(), ref_id))
        return new_version

    # review: guidelines and settings
    def guideline(self, genre: str) -> dict[str, str] | None:
        row = self.db.execute("SELECT genre, text, editor, updated_at FROM guidelines "
                              "WHERE genre=?", (genre,)).fetchone()
        return dict(zip(("genre", "text", "editor", "updated_at"), row, strict=True)) if row else None

    def set_guideline(self, genre: str, text: str, editor: str) -> None:
        self._write("INSERT OR REPLACE INTO guidelines(genre, text, editor, updated_at) "
                    "VALUES (?,?,?,?)", (genre, text, editor, utcnow()))

    def get_setting(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM review_settings WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def put_setting(self, key: str, value: str) -> None:
        self._write("INSERT OR REPLACE INTO review_settings(key, value) VALUES (?,?)", (key, value))

    # -- usefulness ---------------------------------------------------------------------------
    def put_usefulness(self, triplet_id: str, version: int, scorer: str, template_hash: str,
                       settings: str, genre: str | None, data: dict[str, Any]) -> None:
        """One triplet version's usefulness under one scorer, template and settings hash."""
        self._write(
            "INSERT OR REPLACE INTO usefulness(triplet_id, version, scorer, template_hash, "
            "settings, genre, data, created_at) VALUES (?,?,?,?,?,?,?,?)",
            (triplet_id, version, scorer, template_hash, settings, genre,
             json.dumps(data, ensure_ascii=False), utcnow()))

    def has_usefulness(self, triplet_id: str, version: int, scorer: str, template_hash: str,
                       settings: str) -> bool:
        return self.db.execute(
            "SELECT 1 FROM usefulness WHERE triplet_id=? AND version=? AND scorer=? AND "
            "template_hash=? AND settings=?",
            (triplet_id, version, scorer, template_hash, settings)).fetchone() is not None

    def usefulness(self, triplet_id: str) -> dict[str, Any] | None:
        """The latest usefulness of the triplet's newest scored version (for the review page):
        nll_prompt, nll_own, nll_control, gain, gain_vs_control, scorer, template_hash, ..."""
        row = self.db.execute(
            "SELECT data FROM usefulness WHERE triplet_id=? ORDER BY version DESC, created_at "
            "DESC, rowid DESC LIMIT 1", (triplet_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def usefulness_rows(self, scorer: str | None = None) -> list[dict[str, Any]]:
        """Every stored usefulness record (each carries triplet_id, version, genre, scorer)."""
        rows = self._select("SELECT data FROM usefulness", "triplet_id, version, rowid",
                            scorer=scorer or None)
        return [json.loads(d) for (d,) in rows]

    def run_config(self, run_id: str) -> dict[str, Any] | None:
        """The config a run recorded (the dataset card reports construction thresholds)."""
        row = self.db.execute("SELECT config FROM runs WHERE id=?", (run_id,)).fetchone()
        return json.loads(row[0]) if row else None

    # -- runs -------------------------------------------------------------------------------
    def start_run(self, kind: str, config: dict[str, Any]) -> str:
        run_id = f"{kind}-{utcnow().replace(':', '')}-{uuid.uuid4().hex[:6]}"
        self._write("INSERT INTO runs(id, kind, config, started_at) VALUES (?,?,?,?)",
                    (run_id, kind, json.dumps(config, ensure_ascii=False, default=str), utcnow()))
        return run_id

    def finish_run(self, run_id: str, summary: dict[str, Any]) -> None:
        self._write("UPDATE runs SET finished_at=?, summary=? WHERE id=?",
                    (utcnow(), json.dumps(summary, ensure_ascii=False), run_id))

    def runs(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT id, kind, started_at, finished_at, summary FROM runs ORDER BY rowid")
        return [{"id": i, "kind": k, "started_at": s, "finished_at": f,
                 "summary": json.loads(m) if m else None} for i, k, s, f, m in rows]
