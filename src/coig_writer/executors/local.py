"""The local executor: items streamed from the store, a bounded number in flight."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from ..llm import Deferred, EndpointsDown, LLMError
from .base import ItemResult, Job, Outcome


async def run_local(job: Job, items: Iterable[Any], *, concurrency: int = 4,
                    on_item: Callable[[ItemResult], None] | None = None) -> Outcome:
    """Process `items` with `concurrency` workers pulling from one shared iterator, so neither
    the items nor their coroutines are materialised up front. An item whose LLM calls failed
    after retries is reported in `errors` and left pending for the next run; in batch mode an
    item that needs an answer not yet in the cache is counted as `deferred`. When every
    endpoint is down (`EndpointsDown`) no further item is taken: `stopped` says why, and the
    unfinished items stay pending for a rerun."""
    out = Outcome()
    it = iter(items)

    async def worker() -> None:
        for item in it:
            if out.stopped:
                return
            try:
                res = await job.process(item)
            except EndpointsDown as e:
                out.stopped = str(e)
                return
            except Deferred:  # batch mode: the item waits for its next answer
                res = ItemResult(job.item_id(item), "deferred", None)
                out.labels["deferred"] += 1
            except LLMError as e:
                res = ItemResult(job.item_id(item), "error", None)
                out.errors[res.item_id] = str(e)[:500]
            else:
                out.labels[res.label] += 1
            out.done += 1
            if on_item:
                on_item(res)

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    return out
