"""The project store: one SQLite file (created on first use), one connection, and one
repository per area, each the only place that knows its tables:

    store.corpus      source texts, quarantine, near-duplicate index     (corpus.py)
    store.cache       LLM answers by content key, Batch API requests     (llm_cache.py)
    store.construct   stage results and triplets                         (construct.py)
    store.evaluation  eval prompts, generations, judgments, rubric scores (evaluation.py)
    store.review      assignments, reviews, versions, refinements        (review.py)
    store.auth        review-app users, sessions, login throttling, audit (auth.py)
    store.usefulness  REER usefulness per triplet version                (usefulness.py)
    store.runs        jobs with their config and summary                 (runs.py)
    store.search      reasoning-search steps and outcomes                (search.py)
    store.leases      which process works on which item now              (leases.py)
    store.experiment  experiment plan steps: input hash, state, outputs  (experiment.py)

The connection, schema creation, migrations and transactions live in `db.py`.
`Store(path, readonly=True)` opens an existing store without writing to it (a published
store on a read-only mount, or a file another process writes).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from . import (
    auth,
    construct,
    corpus,
    evaluation,
    experiment,
    leases,
    llm_cache,
    review,
    runs,
    search,
    usefulness,
)
from .db import Database, StoreError

DEFAULT_DB = "coig-writer.sqlite"

# Each area's tables; applied in this order on open (CREATE ... IF NOT EXISTS).
SCHEMAS = (corpus.SCHEMA, llm_cache.SCHEMA, runs.SCHEMA, construct.SCHEMA, evaluation.SCHEMA,
           auth.SCHEMA, review.SCHEMA, usefulness.SCHEMA, search.SCHEMA, leases.SCHEMA,
           experiment.SCHEMA)
# Indexes on columns that migrations may have just added.
INDEXES = (llm_cache.INDEXES,)

# Tables whose rows a worker's shard store hands back to the project store (see `merge_from`):
# table -> True when an existing row wins (a cache answer never changes), False when replaced.
MERGED_TABLES = {"llm_cache": True, "stage_results": False, "triplets": False,
                 "generations": False, "judgments": False, "rubric_scores": False}

__all__ = ["DEFAULT_DB", "Store", "StoreError"]


class Store:
    """A project store in one SQLite file, reached area by area (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str] = DEFAULT_DB, readonly: bool = False):
        self.path = Path(path)
        self.db = Database(self.path, SCHEMAS, readonly=readonly)
        if not readonly:
            for sql in INDEXES:
                self.db.conn.executescript(sql)
        self.readonly = readonly
        self.corpus = corpus.CorpusRepo(self.db)
        self.cache = llm_cache.CacheRepo(self.db)
        self.construct = construct.ConstructRepo(self.db)
        self.evaluation = evaluation.EvaluationRepo(self.db)
        self.review = review.ReviewRepo(self.db, self.construct)
        self.auth = auth.AuthRepo(self.db)
        self.usefulness = usefulness.UsefulnessRepo(self.db)
        self.runs = runs.RunsRepo(self.db)
        self.search = search.SearchRepo(self.db)
        self.leases = leases.LeasesRepo(self.db)
        self.experiment = experiment.ExperimentRepo(self.db)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self, commit: bool = True) -> Iterator[sqlite3.Connection]:
        """An explicit transaction over every area (see `Database.transaction`)."""
        with self.db.transaction(commit) as conn:
            yield conn

    def merge_from(self, path: str | os.PathLike[str]) -> dict[str, int]:
        """Copy a shard store's results into this store in one transaction (idempotent: cache
        rows are kept when present, result rows replaced). Returns rows copied per table."""
        counts: dict[str, int] = {}
        self.db.execute("ATTACH DATABASE ? AS shard", (str(path),))
        try:
            with self.db.transaction():
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
