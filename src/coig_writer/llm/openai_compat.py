"""OpenAI-compatible HTTP backend (vLLM, SGLang, llama.cpp server, Ollama, hosted APIs).

A lean aiohttp client on the hot path (one pooled session, raw JSON in and out), routed over one
or more endpoints (see `endpoints.Router`). Retries timeouts, connection errors, invalid JSON,
408/409/429 and 5xx with exponential backoff and full jitter, honouring Retry-After up to the
policy's cap (a longer wait counts as a failure of the endpoint); other 4xx fail at once. Each
call is bounded by the policy's timeout, and the router gives up when every endpoint keeps
failing (`EndpointsDown`), so no run waits on a dead server forever.
The API key comes from an env var and is never logged, stored or put in an error message.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

import aiohttp

from .base import ChatRequest, ChatResponse, LLMError, response_from_message
from .endpoints import Endpoint, FailurePolicy, Router

RETRYABLE = {408, 409, 425, 429, 500, 502, 503, 504}
STAGE_HEADER = "X-Coig-Stage"


class _SchemaRefused(Exception):
    """The server answered 400 to a json_schema response_format (or to logprobs)."""


class _Retry(Exception):
    def __init__(self, reason: str, after: float | None = None, throttled: bool = False):
        super().__init__(reason)
        self.after = after
        self.throttled = throttled


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:  # an HTTP date: not worth parsing, the backoff applies
        return None


class OpenAICompatBackend:
    """Chat completions over HTTP. `endpoints` may list many servers of the same model."""

    def __init__(self, endpoints: list[Endpoint] | str, model: str, *,
                 api_key_env: str | None = None, concurrency: int = 64,
                 timeout_s: float | None = None, max_retries: int = 5, json_mode: bool = True,
                 json_schema: bool = True, extra_body: dict[str, Any] | None = None,
                 backoff_s: float = 0.5, max_backoff_s: float = 30.0,
                 model_id: str | None = None, policy: FailurePolicy | None = None):
        if isinstance(endpoints, str):
            endpoints = [Endpoint(url=endpoints, api_key_env=api_key_env)]
        for e in endpoints:
            if api_key_env and not e.api_key_env:
                e.api_key_env = api_key_env
            if not json_schema:
                e.json_schema = False
            if extra_body:
                e.extra_body = {**extra_body, **e.extra_body}
        self.policy = policy or FailurePolicy()
        if timeout_s is not None:
            self.policy = self.policy.model_copy(update={"timeout_s": timeout_s})
        self.router = Router(endpoints, max_total=concurrency, policy=self.policy)
        self.model = model
        self.model_id = model_id or f"openai:{model}"
        self.json_mode = json_mode
        self.max_retries = max_retries
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self.timeout = aiohttp.ClientTimeout(total=self.policy.timeout_s)
        self.concurrency = concurrency
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def base_url(self) -> str:
        return self.router.endpoints[0].url

    def _client(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._loop = loop
            conn = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=60)
            self._session = aiohttp.ClientSession(
                connector=conn, timeout=self.timeout, json_serialize=json.dumps,
                headers={"Content-Type": "application/json"})
        return self._session

    def payload(self, request: ChatRequest, ep: Endpoint) -> dict[str, Any]:
        body: dict[str, Any] = {"model": ep.model or self.model, "messages": request.message_dicts,
                                "temperature": request.temperature,
                                "max_tokens": request.max_tokens}
        if request.seed is not None:
            body["seed"] = request.seed
        if request.top_logprobs and ep.logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = request.top_logprobs
        if request.json_schema and ep.json_schema:
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "answer", "schema": request.schema, "strict": True}}
        elif (request.json_mode or request.json_schema) and self.json_mode:
            body["response_format"] = {"type": "json_object"}
        if ep.extra_body:
            body.update(ep.extra_body)
        return body

    async def _post(self, ep: Endpoint, body: dict[str, Any], stage: str | None = None
                    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {ep.api_key}"}
        if stage:  # machine-readable label of the call (servers ignore it; test stubs route on it)
            headers[STAGE_HEADER] = stage
        try:
            async with self._client().post(f"{ep.url}/chat/completions", data=json.dumps(body),
                                           headers=headers) as resp:
                raw = await resp.read()
                status = resp.status
                retry_after = resp.headers.get("Retry-After")
        except TimeoutError:
            raise _Retry(f"{ep.url}: no answer within {self.policy.timeout_s:g} s "
                         "(--timeout)") from None
        except aiohttp.ClientError as e:
            raise _Retry(f"{ep.url}: {type(e).__name__}: {e}") from None
        if status == 200:
            try:
                return json.loads(raw)
            except ValueError:
                raise _Retry(f"{ep.url}: answer is not JSON: {raw[:200]!r}") from None
        detail = raw[:300].decode("utf-8", "replace")
        if status in RETRYABLE:
            after, cap = _seconds(retry_after), self.policy.retry_after_cap_s
            if after is not None and after > cap:
                raise _Retry(f"{ep.url}: HTTP {status} asking to wait {after:g} s (Retry-After), "
                             f"more than the {cap:g} s cap: treated as failing")
            raise _Retry(f"{ep.url}: HTTP {status}: {detail}", after,
                         throttled=status == 429 and after is not None)
        if status == 400 and "response_format" in body and ep.json_schema and \
                body["response_format"].get("type") == "json_schema":
            ep.json_schema = False  # this server does not take schemas: json_object from now on
            raise _SchemaRefused(ep.url)
        if status == 400 and body.get("logprobs") and "logprob" in detail.lower():
            ep.logprobs = False  # scores fall back to the integers, and say so
            raise _SchemaRefused(ep.url)
        raise LLMError(f"{ep.url}: HTTP {status}: {detail}")

    async def chat(self, request: ChatRequest) -> ChatResponse:
        last = ""
        est = sum(len(c) for _, c in request.messages) // 2 + request.max_tokens
        attempt = 0
        while attempt <= self.max_retries:
            ep = await self.router.acquire(est, affinity=request.item)
            t0 = time.perf_counter()
            try:
                data = await self._post(ep, self.payload(request, ep), request.stage)
            except _SchemaRefused:  # not the endpoint's failure: ask again without schema/logprobs
                await self.router.release(ep, ok=True)
                continue
            except _Retry as e:
                attempt += 1
                last = str(e)
                await self.router.release(ep, ok=False, error=last, throttled=e.throttled,
                                          wait_s=e.after or 0.0)
                if self.router.gave_up:
                    raise self.router.gave_up from None
                if attempt > self.max_retries:
                    break
                delay = e.after if e.after is not None else \
                    random.uniform(0, min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1)))
                await asyncio.sleep(delay)
                continue
            except LLMError as e:
                await self.router.release(ep, ok=False, error=str(e))
                raise
            except BaseException:  # cancelled: not the endpoint's fault, never counts to give up
                await self.router.release(ep, ok=False, throttled=True)
                raise
            await self.router.release(ep, ok=True)
            choices = data.get("choices") or []
            if not choices:
                raise LLMError(f"{ep.url}: response without choices")
            ch = choices[0]
            resp = response_from_message(ch.get("message") or {}, ch.get("finish_reason"),
                                         data.get("usage"), endpoint=ep.url,
                                         logprobs=ch.get("logprobs"))
            resp.latency_s = time.perf_counter() - t0
            return resp
        raise LLMError(f"{last} (after {self.max_retries + 1} attempts)")

    async def aclose(self) -> None:
        if self._session is not None and self._loop is asyncio.get_running_loop():
            await self._session.close()
        self._session = None
