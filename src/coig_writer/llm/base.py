"""The LLM backend interface: one async `chat` over OpenAI-style messages."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable


class LLMError(RuntimeError):
    """A backend failed after its retries (network, server or model error)."""


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion request. `tags` (e.g. template hashes) enter the cache key only."""

    messages: tuple[tuple[str, str], ...]
    temperature: float = 0.0
    max_tokens: int = 512
    json_mode: bool = False
    seed: int | None = 0
    tags: tuple[tuple[str, str], ...] = field(default=())

    @classmethod
    def build(cls, messages: list[dict[str, str]], *, tags: dict[str, str] | None = None,
              **params: Any) -> ChatRequest:
        return cls(messages=tuple((m["role"], m["content"]) for m in messages),
                   tags=tuple(sorted((tags or {}).items())), **params)

    @property
    def message_dicts(self) -> list[dict[str, str]]:
        return [{"role": r, "content": c} for r, c in self.messages]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["messages"] = self.message_dicts
        d["tags"] = dict(self.tags)
        return d

    def key(self, model_id: str) -> str:
        """Content address of this request sent to `model_id`."""
        blob = json.dumps({"model": model_id, **self.to_dict()}, ensure_ascii=False,
                          sort_keys=True)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass
class ChatResponse:
    text: str
    usage: dict[str, Any] | None = None
    cached: bool = False
    key: str | None = None
    latency_s: float = 0.0


@runtime_checkable
class Backend(Protocol):
    """Anything that answers chat requests. `model_id` names the model for cache keys."""

    model_id: str

    async def chat(self, request: ChatRequest) -> ChatResponse: ...

    async def aclose(self) -> None: ...
