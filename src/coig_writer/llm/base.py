"""The LLM backend interface: one async `chat` over OpenAI-style messages, one answer type."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


class LLMError(RuntimeError):
    """A backend failed after its retries (network, server or model error)."""


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion request. `tags` (e.g. template hashes) enter the cache key;
    `item` (the work item the call serves) and `stage` label it for resume and accounting only."""

    messages: tuple[tuple[str, str], ...]
    temperature: float = 0.0
    max_tokens: int = 512
    json_mode: bool = False
    seed: int | None = 0
    tags: tuple[tuple[str, str], ...] = field(default=())
    json_schema: str | None = None  # canonical JSON text of a JSON Schema
    top_logprobs: int = 0  # > 0: ask for this many alternatives per answer token (score stages)
    item: str | None = field(default=None, compare=False)
    stage: str | None = field(default=None, compare=False)

    @classmethod
    def build(cls, messages: list[dict[str, str]], *, tags: dict[str, str] | None = None,
              json_schema: dict[str, Any] | str | None = None, **params: Any) -> ChatRequest:
        if isinstance(json_schema, dict):  # property order kept: it is the generation order
            json_schema = json.dumps(json_schema, ensure_ascii=False)
        return cls(messages=tuple((m["role"], m["content"]) for m in messages),
                   tags=tuple(sorted((tags or {}).items())), json_schema=json_schema, **params)

    def replace(self, **changes: Any) -> ChatRequest:
        d = {f: getattr(self, f) for f in self.__dataclass_fields__}
        d.update(changes)
        return ChatRequest(**d)

    @property
    def message_dicts(self) -> list[dict[str, str]]:
        return [{"role": r, "content": c} for r, c in self.messages]

    @property
    def schema(self) -> dict[str, Any] | None:
        return json.loads(self.json_schema) if self.json_schema else None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"messages": self.message_dicts, "temperature": self.temperature,
                             "max_tokens": self.max_tokens, "json_mode": self.json_mode,
                             "seed": self.seed, "tags": dict(self.tags)}
        if self.json_schema is not None:  # keys of requests without a schema stay as before
            d["json_schema"] = self.json_schema
        if self.top_logprobs:  # likewise for requests that ask for no logprobs
            d["top_logprobs"] = self.top_logprobs
        return d

    def key(self, model_id: str) -> str:
        """Content address of this request sent to `model_id` (never the endpoint)."""
        blob = json.dumps({"model": model_id, **self.to_dict()}, ensure_ascii=False,
                          sort_keys=True)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass
class ChatResponse:
    """Every model answer, from any backend or the cache: the answer text with any thinking
    split off, why generation stopped, token usage, latency and who answered."""

    text: str
    thinking: str = ""
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    cached: bool = False
    key: str | None = None
    latency_s: float = 0.0
    endpoint: str | None = None
    unusable: str | None = None  # set on a cached answer that failed the completion policy
    # per answer token, when asked for and returned: {"t": token, "p": logprob, "top": [[token,
    # logprob], ...]} and "b" (its UTF-8 bytes) where the token text is not the whole of them
    logprobs: list[dict[str, Any]] | None = None

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"

    @property
    def completion_tokens(self) -> int:
        return int((self.usage or {}).get("completion_tokens") or 0)

    @property
    def prompt_tokens(self) -> int:
        return int((self.usage or {}).get("prompt_tokens") or 0)

    @property
    def cached_prompt_tokens(self) -> int | None:
        """Prompt tokens the server took from its prefix cache, as it reports them
        (`usage.prompt_tokens_details.cached_tokens`: OpenAI, vLLM, SGLang, llama.cpp);
        None when it reports nothing (unknown, not zero)."""
        details = (self.usage or {}).get("prompt_tokens_details")
        value = details.get("cached_tokens") if isinstance(details, dict) else None
        try:
            return int(value) if value is not None else None
        except (TypeError, ValueError):
            return None


_THINK = re.compile(r"^\s*<think>(.*?)</think>\s*", re.S | re.I)
_OPEN = re.compile(r"^\s*<think>", re.I)


def split_thinking(text: str) -> tuple[str, str]:
    """(thinking, answer) from `<think>...</think>answer`; an unclosed think block (cut off
    by max_tokens) is all thinking and no answer."""
    m = _THINK.match(text)
    if m:
        return m.group(1).strip(), text[m.end():].strip()
    if _OPEN.match(text):
        return _OPEN.sub("", text, count=1).strip(), ""
    return "", text.strip()


def compact_logprobs(choice_logprobs: Any) -> list[dict[str, Any]] | None:
    """An OpenAI-style `choices[i].logprobs` (`content`: token, logprob, bytes, top_logprobs) in
    the compact form answers carry and the cache stores; None when there are none."""
    content = choice_logprobs.get("content") if isinstance(choice_logprobs, dict) else None
    if not isinstance(content, list) or not content:
        return None
    out = []
    for tok in content:
        if not isinstance(tok, dict) or "token" not in tok:
            continue
        entry: dict[str, Any] = {"t": str(tok["token"]), "p": float(tok.get("logprob") or 0.0),
                                 "top": [[str(a.get("token", "")), float(a.get("logprob") or 0.0)]
                                         for a in tok.get("top_logprobs") or []
                                         if isinstance(a, dict)]}
        raw = tok.get("bytes")
        if isinstance(raw, list) and bytes(raw) != entry["t"].encode("utf-8", "surrogatepass"):
            entry["b"] = list(raw)
        out.append(entry)
    return out or None


def response_from_message(message: dict[str, Any], finish_reason: str | None,
                          usage: dict[str, Any] | None, endpoint: str | None = None,
                          logprobs: Any = None) -> ChatResponse:
    """Build the answer from an OpenAI-style `message`: thinking from `reasoning_content`
    (vLLM, SGLang, DeepSeek), `reasoning` (OpenRouter, Ollama) or a leading `<think>` block."""
    content = message.get("content") or ""
    thinking = message.get("reasoning_content") or message.get("reasoning") or ""
    if not isinstance(thinking, str):
        thinking = json.dumps(thinking, ensure_ascii=False)
    inline, answer = split_thinking(content)
    if inline or _OPEN.match(content):
        thinking = "\n\n".join(t for t in (thinking, inline) if t)
        content = answer
    return ChatResponse(text=content, thinking=thinking.strip(), finish_reason=finish_reason,
                        usage=usage, endpoint=endpoint, logprobs=compact_logprobs(logprobs))


@runtime_checkable
class Backend(Protocol):
    """Anything that answers chat requests. `model_id` names the model for cache keys."""

    model_id: str

    async def chat(self, request: ChatRequest) -> ChatResponse: ...

    async def aclose(self) -> None: ...
