"""Search: every step of the reasoning search (candidate, score, kept or not) and each
triplet's outcome (`construct search-reasoning`)."""

from __future__ import annotations

import json
from typing import Any

from ..records import utcnow
from .db import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS search_steps (
  triplet_id TEXT NOT NULL, search_key TEXT NOT NULL, step INTEGER NOT NULL,
  cand INTEGER NOT NULL, segment INTEGER NOT NULL, candidate TEXT NOT NULL, nll REAL,
  problems TEXT NOT NULL, kept INTEGER NOT NULL, created_at TEXT NOT NULL,
  PRIMARY KEY (triplet_id, search_key, step, cand));
CREATE TABLE IF NOT EXISTS search_results (
  triplet_id TEXT NOT NULL, search_key TEXT NOT NULL, status TEXT NOT NULL,
  from_version INTEGER NOT NULL, to_version INTEGER, data TEXT NOT NULL,
  created_at TEXT NOT NULL, PRIMARY KEY (triplet_id, search_key));
"""

STEP_KEYS = ("step", "cand", "segment", "candidate", "nll", "problems", "kept", "created_at")


class SearchRepo:
    """The only place that knows the search tables."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def put_steps(self, triplet_id: str, key: str, rows: list[dict[str, Any]]) -> None:
        """One step's candidates, upserted (a replayed step writes the same rows again)."""
        with self.db.transaction():
            self.db.executemany(
                "INSERT OR REPLACE INTO search_steps(triplet_id, search_key, step, cand, segment, "
                "candidate, nll, problems, kept, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [(triplet_id, key, r["step"], r["cand"], r["segment"], r["candidate"], r["nll"],
                  json.dumps(r["problems"], ensure_ascii=False), int(r["kept"]), utcnow())
                 for r in rows])

    def steps(self, triplet_id: str, key: str | None = None) -> list[dict[str, Any]]:
        sql = (f"SELECT {', '.join(STEP_KEYS)} FROM search_steps WHERE triplet_id=?"
               + (" AND search_key=?" if key else "") + " ORDER BY step, cand")
        rows = self.db.execute(sql, (triplet_id, key) if key else (triplet_id,))
        out = [dict(zip(STEP_KEYS, r, strict=True)) for r in rows]
        for r in out:
            r["problems"], r["kept"] = json.loads(r["problems"]), bool(r["kept"])
        return out

    def put_result(self, triplet_id: str, key: str, status: str, from_version: int,
                   to_version: int | None, data: dict[str, Any]) -> None:
        self.db.write(
            "INSERT OR REPLACE INTO search_results(triplet_id, search_key, status, "
            "from_version, to_version, data, created_at) VALUES (?,?,?,?,?,?,?)",
            (triplet_id, key, status, from_version, to_version,
             json.dumps(data, ensure_ascii=False), utcnow()))

    def result(self, triplet_id: str, key: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT status, from_version, to_version, data FROM search_results "
                              "WHERE triplet_id=? AND search_key=?", (triplet_id, key)).fetchone()
        if row is None:
            return None
        return {"status": row[0], "from_version": row[1], "to_version": row[2],
                **json.loads(row[3])}

    def results(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT triplet_id, search_key, status, data FROM search_results "
                               "ORDER BY rowid")
        return [{"triplet_id": t, "search_key": k, "status": s, **json.loads(d)}
                for t, k, s, d in rows]
