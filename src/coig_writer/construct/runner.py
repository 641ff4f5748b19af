"""Construction runs: on the local executor (asyncio, bounded items in flight), on Ray, and
as Batch API waves. Each is a construction run record around the same `ConstructJob`."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..executors.base import Outcome
from ..executors.leasing import ItemLeases
from ..executors.local import run_local as run_items
from ..executors.run import run_job
from ..records import Triplet
from .job import ConstructJob
from .pipeline import ConstructPipeline, RunSummary


def _begin(pipe: ConstructPipeline, job: ConstructJob, kind: str, limit: int | None,
           run_info: dict[str, Any], on_start: Callable[[int], None] | None,
           follow: bool = False) -> RunSummary:
    run_id = pipe.start_run(follow, limit=limit, executor=kind, **run_info)
    summary = RunSummary(run_id=run_id, pending=job.count_pending(limit), executor=kind)
    if on_start:
        on_start(summary.pending)
    return summary


def _end(pipe: ConstructPipeline, summary: RunSummary, out: Outcome, t0: float) -> RunSummary:
    summary.statuses.update(out.labels)
    summary.errors, summary.stopped = out.errors, out.stopped
    summary.elapsed_s = time.perf_counter() - t0
    pipe.finish(summary)
    return summary


async def run_local(pipe: ConstructPipeline, *, limit: int | None = None, concurrency: int = 4,
                    redo: bool = False, on_item: Callable[[Triplet | None], None] | None = None,
                    on_start: Callable[[int], None] | None = None,
                    follow: bool = False) -> RunSummary:
    """Process every pending text on the local executor (bounded items in flight); `follow`
    also takes texts ingested while the run goes."""
    job = ConstructJob(pipe, redo=redo)
    summary = _begin(pipe, job, "local", limit, {"concurrency": concurrency}, on_start, follow)
    t0 = time.perf_counter()
    leases = ItemLeases(pipe.store, job.kind)
    try:
        out = await run_items(job, job.pending(limit), concurrency=concurrency,
                              on_item=(lambda o: on_item(o.value)) if on_item else None,
                              leases=leases)
    finally:
        leases.close()
    return _end(pipe, summary, out, t0)


def _run(pipe: ConstructPipeline, kind: str, limit: int | None, redo: bool,
         run_info: dict[str, Any], on_start: Callable[[int], None] | None = None,
         follow: bool = False, **run_args: Any) -> tuple[RunSummary, dict[str, Any]]:
    """Record a construction run of `kind` (ray, batch) around `run_job(**run_args)`."""
    job = ConstructJob(pipe, redo=redo)
    summary = _begin(pipe, job, kind, limit, run_info, on_start, follow)
    t0 = time.perf_counter()
    out, info = run_job(pipe.store, job, pipe.llm, limit=limit, **run_args)
    return _end(pipe, summary, out, t0), info


def run_on_ray(pipe: ConstructPipeline, backend_spec: dict[str, Any], *,
               limit: int | None = None, redo: bool = False, workers: int = 2,
               shard_size: int = 32, concurrency: int = 16, address: str | None = None,
               on_start: Callable[[int], None] | None = None,
               on_item: Callable[[str], None] | None = None, follow: bool = False) -> RunSummary:
    """Shards of pending texts processed by Ray workers; the driver merges their results."""
    info = {"workers": workers, "shard_size": shard_size, "concurrency": concurrency,
            "ray_address": address}
    return _run(pipe, "ray", limit, redo, info, on_start, follow, executor="ray",
                backend_spec=backend_spec, workers=workers, shard_size=shard_size,
                concurrency=concurrency, address=address, on_item=on_item)[0]


def run_batch_wave(pipe: ConstructPipeline, out_dir: Path, *, batch_in: Path | None = None,
                   limit: int | None = None, redo: bool = False,
                   payload: Any, served_model: str) -> tuple[RunSummary, dict[str, Any]]:
    """Load a Batch API result file (if given), advance every pending item as far as the cached
    answers allow, and write the requests the items wait for as the next wave file."""
    return _run(pipe, "batch", limit, redo, {"batch_in": str(batch_in or "")},
                batch_out=out_dir, batch_in=batch_in, payload=payload,
                served_model=served_model)
