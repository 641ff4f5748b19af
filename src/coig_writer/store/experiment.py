"""Experiment: one row per step of a plan (its input hash, state, outputs, time and cost)."""

from __future__ import annotations

import json
from typing import Any

from ..records import utcnow
from .db import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS experiment_steps (
  step TEXT PRIMARY KEY, input_hash TEXT NOT NULL, state TEXT NOT NULL,
  inputs TEXT NOT NULL DEFAULT '{}', outputs TEXT NOT NULL DEFAULT '{}', started_at TEXT,
  finished_at TEXT, seconds REAL, cost_usd REAL, error TEXT);
"""

_COLS = "step, input_hash, state, inputs, outputs, started_at, finished_at, seconds, cost_usd, error"


class ExperimentRepo:
    """The only place that knows `experiment_steps`. States: running, done, failed, blocked."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _row(self, r: tuple[Any, ...]) -> dict[str, Any]:
        d = dict(zip(_COLS.split(", "), r, strict=True))
        d["inputs"] = json.loads(d["inputs"] or "{}")
        d["outputs"] = json.loads(d["outputs"] or "{}")
        return d

    def step(self, name: str) -> dict[str, Any] | None:
        r = self.db.execute(f"SELECT {_COLS} FROM experiment_steps WHERE step=?",
                            (name,)).fetchone()
        return self._row(r) if r else None

    def steps(self) -> list[dict[str, Any]]:
        return [self._row(r) for r in
                self.db.execute(f"SELECT {_COLS} FROM experiment_steps ORDER BY rowid")]

    def start_step(self, name: str, input_hash: str, inputs: dict[str, Any]) -> None:
        """Mark a step running (replacing any earlier record of it)."""
        self.db.write(
            f"INSERT OR REPLACE INTO experiment_steps ({_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (name, input_hash, "running", json.dumps(inputs, ensure_ascii=False, sort_keys=True),
             "{}", utcnow(), None, None, None, None))

    def finish_step(self, name: str, state: str, outputs: dict[str, Any] | None = None,
                    seconds: float | None = None, cost_usd: float | None = None,
                    error: str | None = None) -> None:
        self.db.write(
            "UPDATE experiment_steps SET state=?, outputs=?, finished_at=?, seconds=?, "
            "cost_usd=?, error=? WHERE step=?",
            (state, json.dumps(outputs or {}, ensure_ascii=False, sort_keys=True), utcnow(),
             seconds, cost_usd, error, name))

    def block_step(self, name: str, input_hash: str, inputs: dict[str, Any], reason: str
                   ) -> None:
        """A step that could not start because an upstream step failed (the finished record
        of an earlier run is kept, so it is still skipped once the inputs come back)."""
        old = self.step(name)
        if old and old["state"] == "done":
            return
        self.start_step(name, input_hash, inputs)
        self.finish_step(name, "blocked", error=reason)
