"""`BackendSpec`: everything `make_backend` needs, as one typed, JSON-able value.

A command builds it once from its options; this process builds its backend from it, and Ray
workers rebuild theirs from the same spec (`model_dump(mode="json")` travels to the worker).
It never enters a cache key: keys come from the requests and the backend's model id alone.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from .endpoints import FailurePolicy


class BackendSpec(BaseModel):
    """Which backend to build, and how. `kind`: local (an embedded model or a .gguf run by
    llama.cpp in-process), openai (OpenAI-compatible servers) or transformers (a checkpoint
    folder run in-process). `policy`: when to give up on failing servers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str = "local"
    model: str | None = None
    base_url: tuple[str, ...] = ()
    endpoints: str | None = None
    api_key_env: str | None = None
    concurrency: int = 64
    timeout_s: float | None = None
    max_retries: int = 5
    n_ctx: int = 8192
    n_parallel: int | None = None
    json_mode: bool = True
    json_schema: bool = True
    extra_body: dict[str, Any] | None = None
    policy: FailurePolicy | None = None
    prompt_cache: bool = True  # off only to measure what the embedded engine's cache saves

    @field_validator("base_url", mode="before")
    @classmethod
    def _urls(cls, v: Any) -> Any:
        """One URL or several (a list from a repeatable option); None: none."""
        if v is None:
            return ()
        return (v,) if isinstance(v, str) else tuple(v)

    def to_json(self) -> dict[str, Any]:
        """The spec as plain JSON values (what a Ray worker receives)."""
        return self.model_dump(mode="json")
