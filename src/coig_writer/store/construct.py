"""Construction: per-stage results of every item and round, and the triplets themselves."""

from __future__ import annotations

import json
from collections.abc import Iterator

from ..records import StageResult, Triplet, utcnow
from .db import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS stage_results (
  item_id TEXT NOT NULL, stage TEXT NOT NULL, round INTEGER NOT NULL, data TEXT NOT NULL,
  PRIMARY KEY (item_id, stage, round));
CREATE TABLE IF NOT EXISTS triplets (
  id TEXT PRIMARY KEY, status TEXT NOT NULL, category TEXT, genre TEXT, data TEXT NOT NULL,
  updated_at TEXT NOT NULL);
"""

Head = tuple[str, str, str | None, str | None]


class ConstructRepo:
    """The only place that knows `stage_results` and `triplets`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def put_stage(self, result: StageResult) -> None:
        self.db.write(
            "INSERT OR REPLACE INTO stage_results(item_id, stage, round, data) VALUES (?,?,?,?)",
            (result.item_id, result.stage, result.round, result.model_dump_json()),
        )

    def stages_for(self, item_id: str) -> list[StageResult]:
        rows = self.db.execute(
            "SELECT data FROM stage_results WHERE item_id=? ORDER BY round, rowid", (item_id,))
        return [StageResult.model_validate_json(d) for (d,) in rows]

    def put_triplet(self, t: Triplet) -> None:
        t.updated_at = utcnow()
        self.db.write(
            "INSERT OR REPLACE INTO triplets(id, status, category, genre, data, updated_at) "
            "VALUES (?,?,?,?,?,?)",
            (t.id, t.status, t.category, t.genre, t.model_dump_json(), t.updated_at),
        )

    def rewrite_triplet(self, t: Triplet) -> None:
        """Update a stored triplet's status and record without committing (for the review
        area's transactions that write a version and the triplet together)."""
        t.updated_at = utcnow()
        self.db.execute("UPDATE triplets SET status=?, data=?, updated_at=? WHERE id=?",
                        (t.status, t.model_dump_json(), t.updated_at, t.id))

    def get_triplet(self, triplet_id: str) -> Triplet | None:
        row = self.db.execute("SELECT data FROM triplets WHERE id=?", (triplet_id,)).fetchone()
        return Triplet.model_validate_json(row[0]) if row else None

    def has_triplet(self, triplet_id: str) -> bool:
        return self.db.execute(
            "SELECT 1 FROM triplets WHERE id=?", (triplet_id,)).fetchone() is not None

    def iter_triplets(self, status: str | None = None) -> Iterator[Triplet]:
        for (data,) in self.db.select("SELECT data FROM triplets", status=status or None).fetchall():
            yield Triplet.model_validate_json(data)

    def score_rows(self, run_id: str | None = None) -> list[dict]:
        """The score fields of every scored triplet (of one run), without their texts: for the
        gate's health figures."""
        sql = ("SELECT json_extract(data, '$.scores'), json_extract(data, '$.expected_scores'), "
               "json_extract(data, '$.score_confidence') FROM triplets WHERE "
               "json_extract(data, '$.scores') IS NOT NULL")
        rows = self.db.execute(sql + (" AND json_extract(data, '$.run_id') = ?" if run_id else ""),
                               (run_id,) if run_id else ())
        return [{"scores": json.loads(s), "expected_scores": json.loads(e) if e else None,
                 "p_value": json.loads(c) if c else None} for s, e, c in rows]

    def count_triplets(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT status, COUNT(*) FROM triplets GROUP BY status"))

    def triplet_heads(self, ids: list[str] | None = None) -> list[Head]:
        """(id, status, category, genre) of triplets without reading their texts."""
        if ids is None:
            return list(self.db.execute("SELECT id, status, category, genre FROM triplets "
                                        "ORDER BY rowid"))
        out: list[Head] = []
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            out += self.db.execute("SELECT id, status, category, genre FROM triplets WHERE id IN "
                                   f"({','.join('?' * len(chunk))})", chunk).fetchall()
        return out
