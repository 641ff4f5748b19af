"""Usefulness: REER clipped-NLL gains per triplet version, scorer, template and settings."""

from __future__ import annotations

import json
from typing import Any

from ..records import utcnow
from .db import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS usefulness (
  triplet_id TEXT NOT NULL, version INTEGER NOT NULL, scorer TEXT NOT NULL,
  template_hash TEXT NOT NULL, settings TEXT NOT NULL, genre TEXT, data TEXT NOT NULL,
  created_at TEXT NOT NULL, PRIMARY KEY (triplet_id, version, scorer, template_hash, settings));
"""


class UsefulnessRepo:
    """The only place that knows the `usefulness` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def put_usefulness(self, triplet_id: str, version: int, scorer: str, template_hash: str,
                       settings: str, genre: str | None, data: dict[str, Any]) -> None:
        """One triplet version's usefulness under one scorer, template and settings hash."""
        self.db.write(
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
        rows = self.db.select("SELECT data FROM usefulness", "triplet_id, version, rowid",
                              scorer=scorer or None)
        return [json.loads(d) for (d,) in rows]
