"""Construction runs on the Ray executor and as Batch API waves (the local run is
`ConstructPipeline.run`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..executors.local import run_local
from ..executors.ray_executor import run_ray
from ..llm.batch import load_results, write_wave
from .job import ConstructJob
from .pipeline import ConstructPipeline, RunSummary


def run_on_ray(pipe: ConstructPipeline, backend_spec: dict[str, Any], *,
               limit: int | None = None, redo: bool = False, workers: int = 2,
               shard_size: int = 32, concurrency: int = 16, address: str | None = None,
               shard_dir: Path | None = None,
               on_start: Callable[[int], None] | None = None,
               on_progress: Callable[[str, int], None] | None = None) -> RunSummary:
    """Shards of pending texts processed by Ray workers; the driver merges their results."""
    job = ConstructJob(pipe, redo=redo)
    run_id = pipe.start_run(limit=limit, executor="ray", workers=workers, shard_size=shard_size,
                            concurrency=concurrency, ray_address=address)
    summary = RunSummary(run_id=run_id, pending=job.count_pending(limit), executor="ray")
    if on_start:
        on_start(summary.pending)
    t0 = time.perf_counter()
    out = run_ray(pipe.store, job, backend_spec, job.pending(limit), workers=workers,
                  shard_size=shard_size, concurrency=concurrency, shard_dir=shard_dir,
                  address=address, accounting=pipe.llm.accounting, on_progress=on_progress)
    summary.statuses.update(out.labels)
    summary.errors = out.errors
    summary.elapsed_s = time.perf_counter() - t0
    pipe.finish(summary)
    return summary


async def run_batch_wave(pipe: ConstructPipeline, out_dir: Path, *, batch_in: Path | None = None,
                         limit: int | None = None, redo: bool = False,
                         payload: Any, served_model: str) -> tuple[RunSummary, dict[str, Any]]:
    """Load a Batch API result file (if given), advance every pending item as far as the cached
    answers allow, and write the requests the items wait for as the next wave file."""
    info: dict[str, Any] = {}
    if batch_in is not None:
        info["loaded"] = load_results(pipe.store, batch_in)
    pipe.llm.defer = True
    job = ConstructJob(pipe, redo=redo)
    run_id = pipe.start_run(limit=limit, executor="batch", batch_in=str(batch_in or ""))
    summary = RunSummary(run_id=run_id, pending=job.count_pending(limit), executor="batch")
    t0 = time.perf_counter()
    out = await run_local(job, job.pending(limit), concurrency=64)
    summary.statuses.update(out.labels)
    summary.errors = out.errors
    summary.elapsed_s = time.perf_counter() - t0
    wave = write_wave(pipe.store, pipe.llm.deferred, pipe.llm.model_id, out_dir, payload,
                      served_model)
    info["wave"], info["requests"] = wave, len(pipe.llm.deferred)
    pipe.finish(summary)
    return summary, info
