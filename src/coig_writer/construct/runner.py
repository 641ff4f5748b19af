"""Construction runs on every executor (local, Ray, Batch API waves): the same recorded run
(`executors.runs`) around the same `ConstructJob`, summarised as a `RunSummary`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..executors.base import ItemResult
from ..executors.runs import JobRun, RunBook, Watch, run_recorded, run_recorded_here
from ..executors.spec import ExecutorSpec
from ..llm import BackendSpec
from ..records import Triplet
from .job import ConstructJob
from .pipeline import ConstructPipeline, RunSummary


class ConstructBook(RunBook):
    """Construction runs are recorded by the pipeline (its config, model, templates and scope)
    and summarised as a `RunSummary`."""

    def __init__(self, pipe: ConstructPipeline, follow: bool = False):
        super().__init__(pipe.store, "construct")
        self.pipe = pipe
        self.follow = follow
        self.summary: RunSummary | None = None

    def start(self, executor: ExecutorSpec, limit: int | None) -> str:
        return self.pipe.start_run(self.follow, limit=limit, executor=executor.name,
                                   **executor.record())

    def finish(self, run: JobRun) -> None:
        s = RunSummary(run_id=run.run_id, pending=run.pending, executor=run.executor,
                       errors=run.outcome.errors, stopped=run.outcome.stopped,
                       elapsed_s=run.elapsed_s)
        s.statuses.update(run.outcome.labels)
        self.pipe.finish(s)
        self.summary = s


class CallbackWatch:
    """A `Watch` from two callbacks: `on_start(pending)` and `on_item(triplet or None)` (Ray
    and batch runs report no triplet)."""

    def __init__(self, on_item: Callable[[Triplet | None], None] | None = None,
                 on_start: Callable[[int], None] | None = None):
        self.on_item, self.on_start = on_item, on_start

    def started(self, pending: int) -> None:
        if self.on_start:
            self.on_start(pending)

    def item(self, result: ItemResult) -> None:
        if self.on_item:
            self.on_item(result.value)


def run_construct(pipe: ConstructPipeline, executor: ExecutorSpec,
                  backend: BackendSpec | None = None, *, limit: int | None = None,
                  redo: bool = False, follow: bool = False,
                  watch: Watch | None = None) -> tuple[RunSummary, dict[str, Any]]:
    """Construct the pending texts (at most `limit`; `redo`: texts with a triplet too;
    `follow`: also texts ingested while the run goes) on `executor`; for batch waves the
    second value holds the answers loaded and the next wave file."""
    book = ConstructBook(pipe, follow)
    run = run_recorded(ConstructJob(pipe, redo=redo), pipe.llm, book, executor, backend,
                       limit=limit, watch=watch)
    assert book.summary is not None
    return book.summary, run.info


async def run_local(pipe: ConstructPipeline, *, limit: int | None = None, concurrency: int = 4,
                    redo: bool = False, on_item: Callable[[Triplet | None], None] | None = None,
                    on_start: Callable[[int], None] | None = None,
                    follow: bool = False) -> RunSummary:
    """Process every pending text on the local executor in the caller's event loop (bounded
    items in flight); `follow` also takes texts ingested while the run goes."""
    book = ConstructBook(pipe, follow)
    await run_recorded_here(ConstructJob(pipe, redo=redo), pipe.llm, book, concurrency,
                            limit=limit, watch=CallbackWatch(on_item, on_start))
    assert book.summary is not None
    return book.summary


def run_on_ray(pipe: ConstructPipeline, backend: BackendSpec, executor: ExecutorSpec, *,
               limit: int | None = None, redo: bool = False,
               watch: Watch | None = None) -> RunSummary:
    """Shards of pending texts processed by Ray workers; the driver merges their results."""
    return run_construct(pipe, executor.model_copy(update={"kind": "ray"}), backend,
                         limit=limit, redo=redo, watch=watch)[0]


def run_batch_wave(pipe: ConstructPipeline, out_dir: Path, *, batch_in: Path | None = None,
                   limit: int | None = None, redo: bool = False
                   ) -> tuple[RunSummary, dict[str, Any]]:
    """Load a Batch API result file (if given), advance every pending item as far as the cached
    answers allow, and write the requests the items wait for as the next wave file."""
    return run_construct(pipe, ExecutorSpec(batch_out=out_dir, batch_in=batch_in), limit=limit,
                         redo=redo)
