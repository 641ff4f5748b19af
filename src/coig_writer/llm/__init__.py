"""LLM backends behind one interface, the request cache, the completion policy, accounting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .accounting import Accounting, load_prices
from .base import Backend, ChatRequest, ChatResponse, LLMError, split_thinking
from .cache import CachedBackend, Deferred
from .endpoints import Endpoint, EndpointsDown, FailurePolicy, load_endpoints
from .json_output import JSONOutputError, parse_json_object
from .models import DEFAULT_MODEL, MODELS, ensure_model
from .policy import (
    CompletionError,
    CompletionPolicy,
    chat_json,
    complete,
    complete_json,
    complete_text,
    detect_loop,
)

__all__ = ["Accounting", "Backend", "CachedBackend", "ChatRequest", "ChatResponse",
           "CompletionError", "CompletionPolicy", "Deferred", "Endpoint", "EndpointsDown",
           "FailurePolicy", "JSONOutputError",
           "LLMError", "chat_json", "complete", "complete_json", "complete_text", "detect_loop",
           "load_prices", "make_backend", "parse_json_object", "split_thinking"]


def make_backend(kind: str = "local", *, model: str | None = None,
                 base_url: str | list[str] | None = None, endpoints: str | None = None,
                 api_key_env: str | None = None,
                 concurrency: int = 64, timeout_s: float | None = None, max_retries: int = 5,
                 n_ctx: int = 8192, n_parallel: int | None = None, json_mode: bool = True,
                 json_schema: bool = True, extra_body: dict[str, Any] | None = None,
                 policy: dict[str, Any] | None = None, prompt_cache: bool = True) -> Backend:
    """Build a backend. `local`: an embedded model name or a .gguf path (default: the embedded
    Qwen2.5-Coder-1.5B) run in-process by llama.cpp. `openai`: one or more OpenAI-compatible
    servers (`base_url`, repeatable, or an `endpoints` YAML) serving `model`. `transformers`:
    a checkpoint folder (`model`, e.g. the `final/` of `train run`) run in-process, batched.
    Keys are read from the env var `api_key_env` (default OPENAI_API_KEY), never stored.
    `policy`: `FailurePolicy` fields (per-call timeout, when to give up, Retry-After cap).
    `prompt_cache=False` turns the embedded engine's prompt cache off (for measurements only)."""
    if kind == "local":
        from .engine import DEFAULT_PARALLEL, LocalBackend

        name = model or DEFAULT_MODEL
        par = n_parallel or DEFAULT_PARALLEL
        if name in MODELS:
            return LocalBackend(ensure_model(name), name=name, n_ctx=n_ctx, n_parallel=par,
                                cache_prompt=prompt_cache)
        path = Path(name)
        if path.suffix != ".gguf" or not path.exists():
            raise LLMError(f"--model must be one of {sorted(MODELS)} or an existing .gguf file, "
                           f"got {name!r}")
        return LocalBackend(path, n_ctx=n_ctx, n_parallel=par, cache_prompt=prompt_cache)
    if kind == "openai":
        from .openai_compat import OpenAICompatBackend

        eps: list[Endpoint] = load_endpoints(endpoints) if endpoints else []
        urls = [base_url] if isinstance(base_url, str) else list(base_url or [])
        eps += [Endpoint(url=u) for u in urls]
        if not eps:
            raise LLMError("the openai backend needs --base-url (repeatable) or --endpoints")
        if not model:
            named = {e.model for e in eps if e.model}
            if len(named) != 1:
                raise LLMError("the openai backend needs --model (the model name in cache keys)")
            model = named.pop()
        return OpenAICompatBackend(eps, model, api_key_env=api_key_env, concurrency=concurrency,
                                   timeout_s=timeout_s, max_retries=max_retries,
                                   json_mode=json_mode, json_schema=json_schema,
                                   extra_body=extra_body,
                                   policy=FailurePolicy.model_validate(policy or {}))
    if kind == "transformers":
        from .transformers_backend import TransformersBackend

        if not model:
            raise LLMError("the transformers backend needs --model (a checkpoint folder)")
        return TransformersBackend(model, max_batch=max(1, min(concurrency, 64)))
    raise LLMError(f"unknown backend {kind!r}; choose local, openai or transformers")
