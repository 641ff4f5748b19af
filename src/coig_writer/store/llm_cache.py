"""LLM cache: every answer by its content-addressed key (request, response, usage, thinking,
finish reason, endpoint, the item and stage it served), and requests sent as Batch API waves."""

from __future__ import annotations

import json
from typing import Any

from ..records import utcnow
from .db import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS llm_cache (
  key TEXT PRIMARY KEY, model TEXT NOT NULL, request TEXT NOT NULL, response TEXT NOT NULL,
  usage TEXT, latency_s REAL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batch_requests (
  key TEXT PRIMARY KEY, model TEXT NOT NULL, request TEXT NOT NULL, item_id TEXT, stage TEXT,
  wave TEXT NOT NULL);
"""
# Applied after the migrations (the column is added to older stores first).
INDEXES = "CREATE INDEX IF NOT EXISTS llm_cache_item ON llm_cache(item_id);"

_CACHE_COLS = ("key, model, request, response, usage, latency_s, created_at, thinking, "
               "finish_reason, endpoint, item_id, stage, unusable, logprobs")


class CacheRepo:
    """The only place that knows `llm_cache` and `batch_requests`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def cache_get(self, key: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT response, usage, thinking, finish_reason, unusable, logprobs FROM llm_cache "
            "WHERE key=?", (key,)).fetchone()
        if not row:
            return None
        return {"text": row[0], "usage": json.loads(row[1]) if row[1] else None,
                "thinking": row[2] or "", "finish_reason": row[3], "unusable": row[4],
                "logprobs": json.loads(row[5]) if row[5] else None}

    def cache_put(self, key: str, model: str, request: dict[str, Any], text: str,
                  usage: dict[str, Any] | None, latency_s: float, *, thinking: str = "",
                  finish_reason: str | None = None, endpoint: str | None = None,
                  item_id: str | None = None, stage: str | None = None,
                  logprobs: list[dict[str, Any]] | None = None) -> None:
        self.db.write(
            "INSERT OR IGNORE INTO llm_cache(key, model, request, response, usage, latency_s, "
            "created_at, thinking, finish_reason, endpoint, item_id, stage, logprobs) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (key, model, json.dumps(request, ensure_ascii=False), text,
             json.dumps(usage) if usage else None, latency_s, utcnow(), thinking or None,
             finish_reason, endpoint, item_id, stage,
             json.dumps(logprobs, ensure_ascii=False, separators=(",", ":")) if logprobs else None),
        )

    def cache_mark_unusable(self, key: str, reason: str) -> None:
        """Record that the completion policy rejected this answer (it stays for the record)."""
        self.db.write("UPDATE llm_cache SET unusable=? WHERE key=?", (reason[:1000], key))

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
        with self.db.transaction():
            self.db.executemany(f"INSERT OR IGNORE INTO llm_cache({_CACHE_COLS}) VALUES "
                                f"({','.join('?' * len(_CACHE_COLS.split(',')))})", rows)

    def cache_rows(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT key, model, request, response, latency_s FROM llm_cache ORDER BY rowid")
        return [{"key": k, "model": m, "request": json.loads(r), "response": t, "latency_s": s}
                for k, m, r, t, s in rows]

    def stage_usage_rows(self) -> list[tuple[str, str, str]]:
        """(stage, request JSON, usage JSON) of cached stage answers that report usage."""
        return self.db.execute("SELECT stage, request, usage FROM llm_cache WHERE usage IS NOT "
                               "NULL AND stage IS NOT NULL").fetchall()

    def put_batch_requests(self, rows: list[tuple[Any, ...]]) -> None:
        """(key, model, request JSON, item_id, stage, wave file) of requests sent as a batch."""
        with self.db.transaction():
            self.db.executemany("INSERT OR IGNORE INTO batch_requests(key, model, request, item_id, "
                                "stage, wave) VALUES (?,?,?,?,?,?)", rows)

    def batch_request(self, key: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT model, request, item_id, stage, wave FROM batch_requests "
                              "WHERE key=?", (key,)).fetchone()
        if not row:
            return None
        return {"model": row[0], "request": json.loads(row[1]), "item_id": row[2],
                "stage": row[3], "wave": row[4]}
