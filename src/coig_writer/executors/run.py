"""Run any job on the executor the user chose: local, Ray, or Batch API waves."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..llm import CachedBackend
from ..llm.batch import load_results, write_wave
from ..store import Store
from .base import Job, Outcome
from .leasing import ItemLeases
from .local import run_local


def run_job(store: Store, job: Job, llm: CachedBackend, *, executor: str = "local",
            backend_spec: dict[str, Any] | None = None, concurrency: int = 4,
            workers: int = 2, shard_size: int = 32, address: str | None = None,
            batch_out: Path | None = None, batch_in: Path | None = None,
            payload: Any = None, served_model: str | None = None,
            on_item: Callable[[str], None] | None = None,
            limit: int | None = None) -> tuple[Outcome, dict[str, Any]]:
    """Process the job's pending items; returns the outcome and, for batch runs, the loaded
    answers and the next wave file. `on_item(label)` is called as items finish; `limit` caps
    the pending items taken. Local and Ray runs claim each item first (`ItemLeases`), so
    several processes on one store share the items."""
    info: dict[str, Any] = {}
    if batch_out is not None or batch_in is not None:
        if batch_in is not None:
            info["loaded"] = load_results(store, batch_in)
        llm.defer = True
        out = asyncio.run(run_local(job, job.pending(limit), concurrency=64))
        info["wave"] = write_wave(store, llm.deferred, llm.model_id,
                                  batch_out or batch_in.parent, payload, served_model or "")
        info["requests"] = len(llm.deferred)
        return out, info
    leases = ItemLeases(store, job.kind)
    try:
        if executor == "ray":
            from .ray_executor import run_ray

            out = run_ray(store, job, backend_spec or {}, job.pending(limit), workers=workers,
                          shard_size=shard_size, concurrency=concurrency, address=address,
                          accounting=llm.accounting, leases=leases,
                          on_progress=(lambda label, n: [on_item(label) for _ in range(n)])
                          if on_item else None)
            return out, info

        async def go() -> Outcome:
            try:
                return await run_local(job, job.pending(limit), concurrency=concurrency,
                                       on_item=(lambda r: on_item(r.label)) if on_item else None,
                                       leases=leases)
            finally:
                await llm.aclose()

        return asyncio.run(go()), info
    finally:
        leases.close()
