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
from .spec import BackendSpec

__all__ = ["Accounting", "Backend", "BackendSpec", "CachedBackend", "ChatRequest", "ChatResponse",
           "CompletionError", "CompletionPolicy", "Deferred", "Endpoint", "EndpointsDown",
           "FailurePolicy", "JSONOutputError",
           "LLMError", "chat_json", "complete", "complete_json", "complete_text", "detect_loop",
           "load_prices", "make_backend", "parse_json_object", "split_thinking"]


def make_backend(spec: BackendSpec | str | None = None, /, **fields: Any) -> Backend:
    """Build the backend a `BackendSpec` names; `make_backend("openai", model=..., base_url=...)`
    and `make_backend(kind=..., ...)` build the spec from its fields first. `local`: an embedded
    model name or a .gguf path (default: the embedded Qwen2.5-Coder-1.5B) run in-process by
    llama.cpp. `openai`: one or more OpenAI-compatible servers (`base_url`, or an `endpoints`
    YAML) serving `model`. `transformers`: a checkpoint folder (`model`, e.g. the `final/` of
    `train run`) run in-process, batched. Keys are read from the env var `api_key_env` (default
    OPENAI_API_KEY), never stored."""
    if isinstance(spec, BackendSpec):
        if fields:
            raise TypeError("make_backend takes a BackendSpec or its fields, not both")
    else:
        spec = BackendSpec(**({"kind": spec} if spec else {}), **fields)
    if spec.kind == "local":
        return _local(spec)
    if spec.kind == "openai":
        return _openai(spec)
    if spec.kind == "transformers":
        from .transformers_backend import TransformersBackend

        if not spec.model:
            raise LLMError("the transformers backend needs --model (a checkpoint folder)")
        return TransformersBackend(spec.model, max_batch=max(1, min(spec.concurrency, 64)))
    raise LLMError(f"unknown backend {spec.kind!r}; choose local, openai or transformers")


def _local(spec: BackendSpec) -> Backend:
    from .engine import DEFAULT_PARALLEL, LocalBackend

    name = spec.model or DEFAULT_MODEL
    par = spec.n_parallel or DEFAULT_PARALLEL
    if name in MODELS:
        return LocalBackend(ensure_model(name), name=name, n_ctx=spec.n_ctx, n_parallel=par,
                            cache_prompt=spec.prompt_cache)
    path = Path(name)
    if path.suffix != ".gguf" or not path.exists():
        raise LLMError(f"--model must be one of {sorted(MODELS)} or an existing .gguf file, "
                       f"got {name!r}")
    return LocalBackend(path, n_ctx=spec.n_ctx, n_parallel=par, cache_prompt=spec.prompt_cache)


def _openai(spec: BackendSpec) -> Backend:
    from .openai_compat import OpenAICompatBackend

    eps: list[Endpoint] = load_endpoints(spec.endpoints) if spec.endpoints else []
    eps += [Endpoint(url=u) for u in spec.base_url]
    if not eps:
        raise LLMError("the openai backend needs --base-url (repeatable) or --endpoints")
    model = spec.model
    if not model:
        named = {e.model for e in eps if e.model}
        if len(named) != 1:
            raise LLMError("the openai backend needs --model (the model name in cache keys)")
        model = named.pop()
    return OpenAICompatBackend(eps, model, api_key_env=spec.api_key_env,
                               concurrency=spec.concurrency, timeout_s=spec.timeout_s,
                               max_retries=spec.max_retries, json_mode=spec.json_mode,
                               json_schema=spec.json_schema, extra_body=spec.extra_body,
                               policy=spec.policy or FailurePolicy())
