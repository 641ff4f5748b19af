"""Run any job on the executor an `ExecutorSpec` names: local, Ray, or Batch API waves."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..llm import BackendSpec, CachedBackend
from ..llm.batch import load_results, write_wave
from ..store import Store
from .base import ItemResult, Job, Outcome
from .leasing import ItemLeases
from .local import run_local
from .spec import ExecutorSpec

OnItem = Callable[[ItemResult], None]


async def run_here(store: Store, job: Job, concurrency: int, *, on_item: OnItem | None = None,
                   limit: int | None = None) -> Outcome:
    """The job's pending items in this event loop, `concurrency` in flight, each claimed first
    (`ItemLeases`) so that several processes on one store share the items."""
    leases = ItemLeases(store, job.kind)
    try:
        return await run_local(job, job.pending(limit), concurrency=concurrency, on_item=on_item,
                               leases=leases)
    finally:
        leases.close()


def run_job(store: Store, job: Job, llm: CachedBackend, executor: ExecutorSpec | None = None,
            backend: BackendSpec | None = None, *, on_item: OnItem | None = None,
            limit: int | None = None) -> tuple[Outcome, dict[str, Any]]:
    """Process the job's pending items (at most `limit`); returns the outcome and, for batch
    runs, the loaded answers and the next wave file. `backend` is what Ray workers build their
    backend from. `on_item(result)` is called as items finish (Ray: label only)."""
    executor = executor or ExecutorSpec()
    if executor.batch:
        return batch_wave(store, job, llm, executor, limit)
    if executor.kind == "ray":
        from .ray_executor import run_ray

        if backend is None:
            raise ValueError("the Ray executor needs the BackendSpec its workers build from")
        out = run_ray(store, job, job.pending(limit), executor, backend,
                      accounting=llm.accounting, on_item=on_item)
        return out, {}

    async def go() -> Outcome:
        try:
            return await run_here(store, job, executor.concurrency, on_item=on_item, limit=limit)
        finally:
            await llm.aclose()

    return asyncio.run(go()), {}


def batch_wave(store: Store, job: Job, llm: CachedBackend, executor: ExecutorSpec,
               limit: int | None = None) -> tuple[Outcome, dict[str, Any]]:
    """Load the Batch API answers of `executor.batch_in` (if any), advance every pending item as
    far as the cached answers allow, and write the requests they wait for as the next wave."""
    info: dict[str, Any] = {}
    if executor.batch_in is not None:
        info["loaded"] = load_results(store, executor.batch_in)
    llm.defer = True
    out = asyncio.run(run_local(job, job.pending(limit), concurrency=64))
    backend = llm.backend
    folder = executor.batch_out or executor.batch_in.parent  # type: ignore[union-attr]
    info["wave"] = write_wave(store, llm.deferred, llm.model_id, folder,
                              getattr(backend, "payload", None), getattr(backend, "model", None) or "")
    info["requests"] = len(llm.deferred)
    return out, info
