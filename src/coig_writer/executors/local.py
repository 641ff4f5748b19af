"""The local executor: items streamed from the store, a bounded number in flight."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from ..llm import Deferred, EndpointsDown, LLMError
from .base import ItemResult, Job, Outcome
from .leasing import ItemLeases, still_pending


async def run_local(job: Job, items: Iterable[Any], *, concurrency: int = 4,
                    on_item: Callable[[ItemResult], None] | None = None,
                    leases: ItemLeases | None = None) -> Outcome:
    """Process `items` with `concurrency` workers pulling from one shared iterator, so neither
    the items nor their coroutines are materialised up front. An item whose LLM calls failed
    after retries is reported in `errors` and left pending for the next run; in batch mode an
    item that needs an answer not yet in the cache is counted as `deferred`. When every
    endpoint is down (`EndpointsDown`) no further item is taken: `stopped` says why, and the
    unfinished items stay pending for a rerun. With `leases`, each item is claimed first and
    skipped when another process works on it (or finished it meanwhile)."""
    out = Outcome()
    it = iter(items)

    async def worker() -> None:
        for item in it:
            if out.stopped:
                return
            key = job.item_id(item) if leases is not None else ""
            if leases is not None:
                if not leases.claim(key):
                    continue
                if not still_pending(job, item):
                    leases.release(key)
                    continue
            try:
                res = await _one(job, item, out)
            finally:
                if leases is not None:
                    leases.release(key)
            if res is None:
                return
            out.done += 1
            if on_item:
                on_item(res)

    beat = asyncio.ensure_future(leases.heartbeat()) if leases is not None else None
    try:
        await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    finally:
        if beat is not None:
            beat.cancel()
    return out


async def _one(job: Job, item: Any, out: Outcome) -> ItemResult | None:
    """Process one item and count its outcome; None when every endpoint is down."""
    try:
        res = await job.process(item)
    except EndpointsDown as e:
        out.stopped = str(e)
        return None
    except Deferred:  # batch mode: the item waits for its next answer
        res = ItemResult(job.item_id(item), "deferred", None)
        out.labels["deferred"] += 1
    except LLMError as e:
        res = ItemResult(job.item_id(item), "error", None)
        out.errors[res.item_id] = str(e)[:500]
    else:
        out.labels[res.label] += 1
    return res
