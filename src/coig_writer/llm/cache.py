"""Content-addressed request cache: a completed request is never sent again.

The response (text, thinking, finish reason, usage) is committed to the store before `chat`
returns, so a killed run loses at most the requests that were in flight. Answers the completion
policy rejected are marked unusable (with the reason) and are never replayed as final.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from ..store import Store
from .accounting import Accounting
from .base import Backend, ChatRequest, ChatResponse


class Deferred(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised on a cache miss in deferred mode (batch files): the request is recorded in
    `CachedBackend.deferred` instead of being sent."""

    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


class CachedBackend:
    """Wraps a backend; looks every request up by its key before sending it."""

    def __init__(self, backend: Backend, store: Store, accounting: Accounting | None = None,
                 defer: bool = False):
        self.backend = backend
        self.store = store
        self.model_id = backend.model_id
        self.accounting = accounting or Accounting()
        self.defer = defer
        self.deferred: dict[str, ChatRequest] = {}
        # called with (request, response) after every answer, cached or not (progress, logs)
        self.listeners: list[Callable[[ChatRequest, ChatResponse], None]] = []
        self.hits = 0
        self.misses = 0
        self._inflight: dict[str, asyncio.Future[ChatResponse]] = {}

    async def chat(self, request: ChatRequest) -> ChatResponse:
        key = request.key(self.model_id)
        hit = self.store.cache.cache_get(key)
        if hit is not None:
            self.hits += 1
            resp = ChatResponse(text=hit["text"], thinking=hit["thinking"],
                                finish_reason=hit["finish_reason"], usage=hit["usage"],
                                cached=True, key=key, unusable=hit["unusable"],
                                logprobs=hit["logprobs"])
            self.accounting.record(request.stage, self.model_id, resp)
            self._notify(request, resp)
            return resp
        if self.defer:
            self.deferred[key] = request
            raise Deferred(key)
        if key in self._inflight:  # identical request already on its way: share it
            return await asyncio.shield(self._inflight[key])
        fut: asyncio.Future[ChatResponse] = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            t0 = time.perf_counter()
            resp = await self.backend.chat(request)
            resp.latency_s = resp.latency_s or time.perf_counter() - t0
            resp.key = key
            self.store.cache.cache_put(key, self.model_id, request.to_dict(), resp.text, resp.usage,
                                 resp.latency_s, thinking=resp.thinking,
                                 finish_reason=resp.finish_reason, endpoint=resp.endpoint,
                                 item_id=request.item, stage=request.stage,
                                 logprobs=resp.logprobs)
            self.misses += 1
            self.accounting.record(request.stage, self.model_id, resp)
            self._notify(request, resp)
            fut.set_result(resp)
            return resp
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # mark retrieved when nobody else waits
            raise
        finally:
            del self._inflight[key]

    def _notify(self, request: ChatRequest, resp: ChatResponse) -> None:
        for listener in self.listeners:
            listener(request, resp)

    def mark_unusable(self, key: str, reason: str) -> None:
        self.store.cache.cache_mark_unusable(key, reason)

    async def aclose(self) -> None:
        await self.backend.aclose()
