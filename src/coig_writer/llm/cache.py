"""Content-addressed request cache: a completed request is never sent again.

The response is committed to the store before `chat` returns, so a killed run loses at most the
requests that were in flight.
"""

from __future__ import annotations

import asyncio
import time

from ..store import Store
from .base import Backend, ChatRequest, ChatResponse


class CachedBackend:
    """Wraps a backend; looks every request up by its key before sending it."""

    def __init__(self, backend: Backend, store: Store):
        self.backend = backend
        self.store = store
        self.model_id = backend.model_id
        self.hits = 0
        self.misses = 0
        self._inflight: dict[str, asyncio.Future[ChatResponse]] = {}

    async def chat(self, request: ChatRequest) -> ChatResponse:
        key = request.key(self.model_id)
        hit = self.store.cache_get(key)
        if hit is not None:
            self.hits += 1
            return ChatResponse(text=hit["text"], usage=hit["usage"], cached=True, key=key)
        if key in self._inflight:  # identical request already on its way: share it
            return await asyncio.shield(self._inflight[key])
        fut: asyncio.Future[ChatResponse] = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            t0 = time.perf_counter()
            resp = await self.backend.chat(request)
            resp.latency_s = time.perf_counter() - t0
            resp.key = key
            self.store.cache_put(key, self.model_id, request.to_dict(), resp.text, resp.usage,
                                 resp.latency_s)
            self.misses += 1
            fut.set_result(resp)
            return resp
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # mark retrieved when nobody else waits
            raise
        finally:
            del self._inflight[key]

    async def aclose(self) -> None:
        await self.backend.aclose()
