"""Runs: each job's kind, config, start, end and summary (usage, cost, counts)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from ..records import utcnow
from .db import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY, kind TEXT NOT NULL, config TEXT NOT NULL, started_at TEXT NOT NULL,
  finished_at TEXT, summary TEXT);
"""


class RunsRepo:
    """The only place that knows the `runs` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def start_run(self, kind: str, config: dict[str, Any]) -> str:
        run_id = f"{kind}-{utcnow().replace(':', '')}-{uuid.uuid4().hex[:6]}"
        self.db.write("INSERT INTO runs(id, kind, config, started_at) VALUES (?,?,?,?)",
                      (run_id, kind, json.dumps(config, ensure_ascii=False, default=str), utcnow()))
        return run_id

    def finish_run(self, run_id: str, summary: dict[str, Any]) -> None:
        self.db.write("UPDATE runs SET finished_at=?, summary=? WHERE id=?",
                      (utcnow(), json.dumps(summary, ensure_ascii=False), run_id))

    def run_config(self, run_id: str) -> dict[str, Any] | None:
        """The config a run recorded (the dataset card reports construction thresholds)."""
        row = self.db.execute("SELECT config FROM runs WHERE id=?", (run_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def runs(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT id, kind, started_at, finished_at, summary FROM runs ORDER BY rowid")
        return [{"id": i, "kind": k, "started_at": s, "finished_at": f,
                 "summary": json.loads(m) if m else None} for i, k, s, f, m in rows]
