"""OpenAI-compatible HTTP backend (vLLM, llama.cpp server, Ollama, hosted APIs).

Concurrency is bounded by a semaphore; the openai client retries timeouts, connection errors,
408/409/429 and 5xx with exponential backoff and honours Retry-After.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import openai
from openai import AsyncOpenAI

from .base import ChatRequest, ChatResponse, LLMError


class OpenAICompatBackend:
    def __init__(self, base_url: str, model: str, *, api_key: str | None = None,
                 concurrency: int = 8, timeout_s: float = 600.0, max_retries: int = 5,
                 json_mode: bool = True, extra_body: dict[str, Any] | None = None):
        self.base_url = base_url
        self.model = model
        self.model_id = f"openai:{model}"
        self.json_mode = json_mode
        self.extra_body = extra_body or {}
        self._sem = asyncio.Semaphore(concurrency)
        # The key comes from the caller or OPENAI_API_KEY; it is never logged or stored.
        self._client = AsyncOpenAI(base_url=base_url,
                                   api_key=api_key or os.environ.get("OPENAI_API_KEY") or "none",
                                   timeout=timeout_s, max_retries=max_retries)

    async def chat(self, request: ChatRequest) -> ChatResponse:
        kwargs: dict[str, Any] = dict(model=self.model, messages=request.message_dicts,
                                      temperature=request.temperature,
                                      max_tokens=request.max_tokens)
        if request.seed is not None:
            kwargs["seed"] = request.seed
        if request.json_mode and self.json_mode:
            kwargs["response_format"] = {"type": "json_object"}
        if self.extra_body:
            kwargs["extra_body"] = self.extra_body
        async with self._sem:
            try:
                resp = await self._client.chat.completions.create(**kwargs)
            except openai.APIError as e:
                raise LLMError(f"{self.base_url}: {type(e).__name__}: {e}") from e
        if not resp.choices:
            raise LLMError(f"{self.base_url}: response without choices")
        usage = resp.usage.model_dump() if resp.usage else None
        return ChatResponse(text=resp.choices[0].message.content or "", usage=usage)

    async def aclose(self) -> None:
        await self._client.close()
