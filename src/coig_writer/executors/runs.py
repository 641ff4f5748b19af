"""Run bookkeeping, the same for every job: the run record is started, the job runs on the
executor its `ExecutorSpec` names (progress reported to a `Watch`), and the record is finished
with the labels, errors, why the run stopped early and the LLM accounting."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..llm import BackendSpec, CachedBackend
from ..store import Store
from .base import ItemResult, Job, Outcome
from .run import run_here, run_job
from .spec import ExecutorSpec


@dataclass
class JobRun:
    """What one recorded run of a job did."""

    run_id: str
    executor: str  # local, ray or batch
    pending: int  # items pending when it started (at most its limit)
    outcome: Outcome = field(default_factory=Outcome)
    info: dict[str, Any] = field(default_factory=dict)  # batch: answers loaded, next wave
    elapsed_s: float = 0.0
    accounting: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """The finished run as the runs table keeps it."""
        out = self.outcome
        return {"labels": dict(out.labels), "errors": out.errors, "stopped": out.stopped,
                "accounting": self.accounting, "totals": self.totals}


class Watch(Protocol):
    """Progress of a run: the pending count once it starts, then each finished item."""

    def started(self, pending: int) -> None: ...

    def item(self, result: ItemResult) -> None: ...


class RunBook:
    """Where a job's runs are recorded: the store's runs table, under `kind`, with `info`
    (the job's spec, the model) and the executor's settings."""

    def __init__(self, store: Store, kind: str, info: dict[str, Any] | None = None):
        self.store = store
        self.kind = kind
        self.info = info or {}

    def start(self, executor: ExecutorSpec, limit: int | None) -> str:
        return self.store.runs.start_run(self.kind, {**self.info, "executor": executor.name,
                                                     **executor.record(), "limit": limit})

    def finish(self, run: JobRun) -> None:
        self.store.runs.finish_run(run.run_id, run.record())


def _begin(job: Job, book: RunBook, executor: ExecutorSpec, limit: int | None,
           watch: Watch | None) -> tuple[JobRun, float]:
    run = JobRun(book.start(executor, limit), executor.name, job.count_pending(limit))
    if watch is not None:
        watch.started(run.pending)
    return run, time.perf_counter()


def _end(book: RunBook, llm: CachedBackend, run: JobRun, t0: float) -> JobRun:
    run.elapsed_s = time.perf_counter() - t0
    run.accounting, run.totals = llm.accounting.summary(), llm.accounting.totals()
    book.finish(run)
    return run


def run_recorded(job: Job, llm: CachedBackend, book: RunBook, executor: ExecutorSpec,
                 backend: BackendSpec | None = None, *, limit: int | None = None,
                 watch: Watch | None = None) -> JobRun:
    """One recorded run of `job` on `executor` (`backend`: what Ray workers build theirs
    from); at most `limit` pending items."""
    run, t0 = _begin(job, book, executor, limit, watch)
    run.outcome, run.info = run_job(book.store, job, llm, executor, backend, limit=limit,
                                    on_item=watch.item if watch is not None else None)
    return _end(book, llm, run, t0)


async def run_recorded_here(job: Job, llm: CachedBackend, book: RunBook, concurrency: int,
                            *, limit: int | None = None, watch: Watch | None = None) -> JobRun:
    """The same on the local executor, in the caller's event loop."""
    run, t0 = _begin(job, book, ExecutorSpec(concurrency=concurrency), limit, watch)
    run.outcome = await run_here(book.store, job, concurrency, limit=limit,
                                 on_item=watch.item if watch is not None else None)
    return _end(book, llm, run, t0)
