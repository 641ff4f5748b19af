"""LLM backends behind one interface, plus the request cache and JSON helpers."""

from __future__ import annotations

from pathlib import Path

from .base import Backend, ChatRequest, ChatResponse, LLMError
from .cache import CachedBackend
from .json_output import JSONOutputError, chat_json, parse_json_object
from .models import DEFAULT_MODEL, MODELS, ensure_model

__all__ = ["Backend", "CachedBackend", "ChatRequest", "ChatResponse", "JSONOutputError",
           "LLMError", "chat_json", "make_backend", "parse_json_object"]


def make_backend(kind: str = "local", *, model: str | None = None, base_url: str | None = None,
                 api_key: str | None = None, concurrency: int = 4, timeout_s: float = 600.0,
                 max_retries: int = 5, n_ctx: int = 8192, json_mode: bool = True) -> Backend:
    """Build a backend. `local`: an embedded model name or a .gguf path (default: the
    embedded Qwen2.5-Coder-1.5B). `openai`: an OpenAI-compatible server at `base_url`."""
    if kind == "local":
        from .local_llama import LocalLlamaBackend

        name = model or DEFAULT_MODEL
        if name in MODELS:
            return LocalLlamaBackend(ensure_model(name), name=name, n_ctx=n_ctx)
        path = Path(name)
        if path.suffix != ".gguf" or not path.exists():
            raise LLMError(f"--model must be one of {sorted(MODELS)} or an existing .gguf file, "
                           f"got {name!r}")
        return LocalLlamaBackend(path, n_ctx=n_ctx)
    if kind == "openai":
        if not base_url or not model:
            raise LLMError("the openai backend needs --base-url and --model")
        from .openai_compat import OpenAICompatBackend

        return OpenAICompatBackend(base_url, model, api_key=api_key, concurrency=concurrency,
                                   timeout_s=timeout_s, max_retries=max_retries,
                                   json_mode=json_mode)
    raise LLMError(f"unknown backend {kind!r}; choose local or openai")
