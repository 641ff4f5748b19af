"""Human review: assignments, decisions, numbered triplet versions, refinement requests (send
back -> model refines -> re-review), per-genre guidelines and review settings."""

from __future__ import annotations

import json
from typing import Any

from ..records import Triplet, utcnow
from .construct import ConstructRepo
from .db import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS assignments (
  item_id TEXT NOT NULL, reviewer TEXT NOT NULL, created_at TEXT NOT NULL,
  PRIMARY KEY (item_id, reviewer));
CREATE TABLE IF NOT EXISTS reviews (
  id INTEGER PRIMARY KEY AUTOINCREMENT, item_id TEXT NOT NULL, reviewer TEXT NOT NULL,
  decision TEXT NOT NULL, reason TEXT NOT NULL, version INTEGER NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS triplet_versions (
  item_id TEXT NOT NULL, version INTEGER NOT NULL, editor TEXT NOT NULL, data TEXT NOT NULL,
  diff TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (item_id, version));
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

_REF_KEYS = ("id", "item_id", "round", "review_id", "reviewer", "feedback", "fields",
             "from_version", "before", "to_version", "status", "reason", "model",
             "cache_keys", "attempts", "created_at", "finished_at")
_REVIEW_KEYS = ("id", "item_id", "reviewer", "decision", "reason", "version", "created_at",
                "round", "fields")
_INSERT_REVIEW = ("INSERT INTO reviews(item_id, reviewer, decision, reason, version, created_at, "
                  "round, fields) VALUES (?,?,?,?,?,?,?,?)")
_FINISHED = "status IN ('done', 'failed')"


def _ref(row: tuple[Any, ...]) -> dict[str, Any]:
    d = dict(zip(_REF_KEYS, row, strict=True))
    d["fields"], d["cache_keys"] = json.loads(d["fields"]), json.loads(d["cache_keys"])
    return d


class ReviewRepo:
    """The only place that knows the review tables; writes a triplet's new version and the
    triplet itself (through the construct area) in one transaction."""

    def __init__(self, db: Database, triplets: ConstructRepo) -> None:
        self.db = db
        self.triplets = triplets

    def assign(self, item_id: str, reviewer: str) -> bool:
        cur = self.db.write("INSERT OR IGNORE INTO assignments(item_id, reviewer, created_at) "
                            "VALUES (?,?,?)", (item_id, reviewer, utcnow()))
        return cur.rowcount == 1

    def assignments(self, reviewer: str | None = None,
                    item_id: str | None = None) -> list[tuple[str, str]]:
        return list(self.db.select("SELECT item_id, reviewer FROM assignments",
                                   reviewer=reviewer or None, item_id=item_id))

    def add_review(self, item_id: str, reviewer: str, decision: str, reason: str,
                   version: int, round: int = 0, fields: str = "") -> int:
        cur = self.db.write(_INSERT_REVIEW, (item_id, reviewer, decision, reason, version,
                                             utcnow(), round, fields))
        return int(cur.lastrowid or 0)

    def reviews(self, item_id: str | None = None) -> list[dict[str, Any]]:
        rows = self.db.select(f"SELECT {', '.join(_REVIEW_KEYS)} FROM reviews", "id",
                              item_id=item_id or None)
        return [dict(zip(_REVIEW_KEYS, r, strict=True)) for r in rows]

    # -- versions ---------------------------------------------------------------------------
    def triplet_version(self, item_id: str) -> int:
        row = self.db.execute("SELECT MAX(version) FROM triplet_versions WHERE item_id=?",
                              (item_id,)).fetchone()
        return row[0] or 0

    def _add_version(self, t: Triplet, version: int, editor: str, diff: str) -> None:
        """Write version `version` of `t` and the triplet itself (inside a transaction)."""
        self.db.execute("INSERT INTO triplet_versions(item_id, version, editor, data, diff, "
                        "created_at) VALUES (?,?,?,?,?,?)",
                        (t.id, version, editor, t.model_dump_json(), diff, utcnow()))
        self.triplets.rewrite_triplet(t)

    def save_edit(self, t: Triplet, expected_version: int, editor: str, diff: str) -> int | None:
        """Store `t` as the next version if the current one is still `expected_version`;
        None (nothing written) when someone else saved first."""
        with self.db.transaction():
            if self.triplet_version(t.id) != expected_version:
                return None
            self._add_version(t, expected_version + 1, editor, diff)
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

    # -- refinement requests ----------------------------------------------------------------
    def send_back(self, t: Triplet, reviewer: str, feedback: str, fields: list[str],
                  version: int, round: int) -> int | None:
        """Record a send-back decision and its refinement request, and mark the item
        `refining`, in one transaction; None when the item changed (version) or was already
        sent back in this round."""
        before = t.model_dump_json()
        with self.db.transaction():
            taken = self.db.execute("SELECT 1 FROM refinements WHERE item_id=? AND round=?",
                                    (t.id, round + 1)).fetchone()
            if self.triplet_version(t.id) != version or taken:
                return None
            review_id = self.db.execute(_INSERT_REVIEW, (
                t.id, reviewer, "send_back", feedback, version, utcnow(), round,
                ",".join(fields))).lastrowid
            self.db.execute(
                "INSERT INTO refinements(item_id, round, review_id, reviewer, feedback, fields, "
                "from_version, before, status, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (t.id, round + 1, review_id, reviewer, feedback, json.dumps(fields), version,
                 before, "pending", utcnow()))
            t.status = "refining"
            self.triplets.rewrite_triplet(t)
        return int(review_id or 0)

    def refinements(self, item_id: str | None = None,
                    status: str | None = None) -> list[dict[str, Any]]:
        rows = self.db.select(f"SELECT {', '.join(_REF_KEYS)} FROM refinements", "id",
                              item_id=item_id, status=status)
        return [_ref(r) for r in rows]

    def review_rounds(self) -> dict[str, int]:
        """item -> finished refinements (its current review round), for items with any."""
        return dict(self.db.execute(f"SELECT item_id, COUNT(*) FROM refinements WHERE {_FINISHED} "
                                    "GROUP BY item_id"))

    def review_round(self, item_id: str) -> int:
        """How many refinements of the item have finished (the current review round)."""
        row = self.db.execute(f"SELECT COUNT(*) FROM refinements WHERE item_id=? AND {_FINISHED}",
                              (item_id,)).fetchone()
        return int(row[0])

    def refinement_attempt(self, ref_id: int, error: str | None = None) -> None:
        """Count a start of work on a refinement (and the transient error that ended it)."""
        if error is None:
            self.db.write("UPDATE refinements SET attempts=attempts+1, status='running' WHERE id=?",
                          (ref_id,))
        else:
            self.db.write("UPDATE refinements SET reason=?, status='pending' WHERE id=?",
                          (error, ref_id))

    def finish_refinement(self, ref_id: int, t: Triplet | None, editor: str, diff: str,
                          status: str, reason: str, model: str | None,
                          cache_keys: list[str]) -> int | None:
        """Store the refined triplet as the item's next version (if any) and close the request,
        in one transaction. Idempotent: a request already finished writes nothing again.
        Returns the new version (None when no version was written)."""
        with self.db.transaction():
            row = self.db.execute("SELECT item_id, status, to_version FROM refinements WHERE id=?",
                                  (ref_id,)).fetchone()
            if row is None:
                raise KeyError(ref_id)
            if row[1] in ("done", "failed"):
                return row[2]
            new_version = None
            if t is not None:
                new_version = self.triplet_version(row[0]) + 1
                self._add_version(t, new_version, editor, diff)
            elif (cur := self.triplets.get_triplet(row[0])) is not None:
                cur.status = "needs_review"
                cur.reasons.append(f"refinement failed: {reason}")
                self.triplets.rewrite_triplet(cur)
            self.db.execute(
                "UPDATE refinements SET status=?, reason=?, to_version=?, model=?, cache_keys=?, "
                "finished_at=? WHERE id=?", (status, reason, new_version, model,
                                             json.dumps(cache_keys), utcnow(), ref_id))
        return new_version

    # -- guidelines and settings ------------------------------------------------------------
    def guideline(self, genre: str) -> dict[str, str] | None:
        row = self.db.execute("SELECT genre, text, editor, updated_at FROM guidelines "
                              "WHERE genre=?", (genre,)).fetchone()
        return dict(zip(("genre", "text", "editor", "updated_at"), row, strict=True)) if row else None

    def set_guideline(self, genre: str, text: str, editor: str) -> None:
        self.db.write("INSERT OR REPLACE INTO guidelines(genre, text, editor, updated_at) "
                      "VALUES (?,?,?,?)", (genre, text, editor, utcnow()))

    def get_setting(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM review_settings WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def put_setting(self, key: str, value: str) -> None:
        self.db.write("INSERT OR REPLACE INTO review_settings(key, value) VALUES (?,?)",
                      (key, value))
