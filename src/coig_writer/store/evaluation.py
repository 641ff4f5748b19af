"""Evaluation: prompt sets, generations per model, pairwise/ranking judgments, rubric scores."""

from __future__ import annotations

from ..records import EvalPrompt, Generation, Judgment, RubricScore
from .db import Database

SCHEMA = """
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

_PROMPT_COLS = "eval_prompts(id, set_name, lang, data) VALUES (?,?,?,?)"


class EvaluationRepo:
    """The only place that knows the evaluation tables."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def put_eval_prompt(self, p: EvalPrompt) -> None:
        self.db.write(f"INSERT OR REPLACE INTO {_PROMPT_COLS}",
                      (p.id, p.set_name, p.lang, p.model_dump_json()))

    def add_eval_prompt(self, p: EvalPrompt) -> bool:
        """Insert a prompt unless its id is stored; returns whether it was added."""
        cur = self.db.write(f"INSERT OR IGNORE INTO {_PROMPT_COLS}",
                            (p.id, p.set_name, p.lang, p.model_dump_json()))
        return cur.rowcount == 1

    def eval_prompts(self, set_name: str | None = None, lang: str | None = None) -> list[EvalPrompt]:
        rows = self.db.select("SELECT data FROM eval_prompts", set_name=set_name or None,
                              lang=lang or None)
        return [EvalPrompt.model_validate_json(d) for (d,) in rows]

    def get_eval_prompt(self, prompt_id: str) -> EvalPrompt | None:
        row = self.db.execute("SELECT data FROM eval_prompts WHERE id=?", (prompt_id,)).fetchone()
        return EvalPrompt.model_validate_json(row[0]) if row else None

    def put_generation(self, g: Generation) -> None:
        self.db.write("INSERT OR REPLACE INTO generations(model, prompt_id, data) VALUES (?,?,?)",
                      (g.model, g.prompt_id, g.model_dump_json()))

    def generations(self, model: str | None = None, prompt_id: str | None = None
                    ) -> list[Generation]:
        rows = self.db.select("SELECT data FROM generations", model=model or None,
                              prompt_id=prompt_id)
        return [Generation.model_validate_json(d) for (d,) in rows]

    def has_generation(self, model: str, prompt_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM generations WHERE model=? AND prompt_id=?",
                               (model, prompt_id)).fetchone() is not None

    def put_judgment(self, j: Judgment) -> None:
        self.db.write("INSERT OR REPLACE INTO judgments(key, prompt_id, kind, source, judge, data) "
                      "VALUES (?,?,?,?,?,?)", (j.key, j.prompt_id, j.kind, j.source, j.judge,
                                               j.model_dump_json()))

    def judgments(self, source: str | None = None, judge: str | None = None) -> list[Judgment]:
        rows = self.db.select("SELECT data FROM judgments", source=source or None,
                              judge=judge or None)
        return [Judgment.model_validate_json(d) for (d,) in rows]

    def has_judgment(self, key: str) -> bool:
        return self.db.execute("SELECT 1 FROM judgments WHERE key=?", (key,)).fetchone() is not None

    def put_rubric_score(self, r: RubricScore) -> None:
        self.db.write("INSERT OR REPLACE INTO rubric_scores(key, prompt_id, model, judge, data) "
                      "VALUES (?,?,?,?,?)", (r.key, r.prompt_id, r.model, r.judge,
                                             r.model_dump_json()))

    def rubric_scores(self, judge: str | None = None, model: str | None = None
                      ) -> list[RubricScore]:
        rows = self.db.select("SELECT data FROM rubric_scores", judge=judge or None,
                              model=model or None)
        return [RubricScore.model_validate_json(d) for (d,) in rows]

    def has_rubric_score(self, key: str) -> bool:
        return self.db.execute("SELECT 1 FROM rubric_scores WHERE key=?",
                               (key,)).fetchone() is not None
