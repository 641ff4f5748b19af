"""Embedded backend: a GGUF model run in-process with llama-cpp-python. No server, no key."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

from .base import ChatRequest, ChatResponse, LLMError


class LocalLlamaBackend:
    """Runs one model in this process; requests are served one at a time in a worker thread."""

    def __init__(self, model_path: str | Path, *, name: str | None = None, n_ctx: int = 8192,
                 n_threads: int | None = None):
        self.model_path = Path(model_path)
        self.model_id = f"llama.cpp:{name or self.model_path.name}"
        self.n_ctx = n_ctx
        self.n_threads = n_threads or os.cpu_count() or 1
        self._llm: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._llm is None:
            from llama_cpp import Llama

            if not self.model_path.exists():
                raise LLMError(f"model file not found: {self.model_path}")
            self._llm = Llama(model_path=str(self.model_path), n_ctx=self.n_ctx,
                              n_threads=self.n_threads, verbose=False)
        return self._llm

    def _complete(self, request: ChatRequest) -> ChatResponse:
        with self._lock:
            llm = self._load()
            kwargs: dict[str, Any] = dict(messages=request.message_dicts,
                                          temperature=request.temperature,
                                          max_tokens=request.max_tokens)
            if request.seed is not None:
                kwargs["seed"] = request.seed
            if request.json_mode:
                kwargs["response_format"] = {"type": "json_object"}
            try:
                out = llm.create_chat_completion(**kwargs)
            except ValueError as e:  # e.g. prompt longer than the context window
                raise LLMError(f"{self.model_id}: {e}") from e
        return ChatResponse(text=out["choices"][0]["message"]["content"] or "",
                            usage=dict(out.get("usage") or {}))

    async def chat(self, request: ChatRequest) -> ChatResponse:
        return await asyncio.to_thread(self._complete, request)

    async def aclose(self) -> None:
        self._llm = None
