"""One completion policy between "send" and "use", shared by every caller.

A model answer is used only when it is whole (not cut at `max_tokens`), not a repetition loop,
and parses into what the caller needs. Otherwise the policy retries: a truncated answer with
more tokens (up to a cap), a loop with another seed, an unparseable or invalid answer with the
error shown to the model (JSON) or another seed (text). When the attempts are spent it raises
`CompletionError` with the kind and reason, for a human to see.

Failed answers are marked unusable in the cache. A rerun replays the same deterministic chain
of requests, skips the answers already known to be unusable without counting them, and so asks
the model afresh instead of replaying a failure as final.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from .base import ChatRequest, ChatResponse
from .json_output import JSONOutputError, parse_json_object

T = TypeVar("T")


@dataclass(frozen=True)
class CompletionPolicy:
    attempts: int = 2            # answers asked for per call in one run (first + retries)
    grow_tokens: float = 2.0     # on truncation: max_tokens *= grow_tokens ...
    max_tokens_cap: int = 4096   # ... up to this
    detect_loops: bool = True
    loop_min_chars: int = 60     # a loop must cover at least this many characters
    max_skipped: int = 50        # bound on known-bad cached answers skipped in one call


DEFAULT_POLICY = CompletionPolicy()


class CompletionError(ValueError):
    """No usable answer: `kind` is truncated, loop, unparseable or invalid."""

    def __init__(self, kind: str, reason: str, responses: list[ChatResponse]):
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.responses = responses


class _Chat(Protocol):
    async def chat(self, request: ChatRequest) -> ChatResponse: ...


def detect_loop(text: str, min_chars: int = 60, max_unit: int = 200) -> str | None:
    """The repeated unit when `text` ends in 4+ back-to-back repeats of a 4-`max_unit`
    character unit covering at least `min_chars` characters (the signature of a decoding loop:
    it runs until max_tokens or stops inside the loop), else None.

    Exact and cheap: for each unit length k the last span must equal itself shifted by k (any
    phase, so a loop cut mid-unit counts), tried at the last few end positions (a loop may end
    with a stray character); only the k where the last character recurs are tried. A loop the
    model escaped from mid-answer is not reported."""
    t = text.rstrip()
    n = len(t)
    for end in range(n, max(0, n - 4), -1):
        last = t[end - 1]
        lo = max(0, end - 1 - max_unit)
        pos = t.rfind(last, lo, end - 4)  # candidate unit lengths: earlier copies of `last`
        while pos >= 0:
            k = end - 1 - pos
            start = end - max(3 * k, min_chars - k) - k
            if start < 0:
                break
            if t[start:end - k] == t[start + k:end]:
                return t[end - k:end]
            pos = t.rfind(last, lo, pos)
    return None


def _failure(resp: ChatResponse, request: ChatRequest, policy: CompletionPolicy
             ) -> tuple[str, str] | None:
    loop = detect_loop(resp.text, policy.loop_min_chars) if policy.detect_loops else None
    if loop is not None:
        return "loop", f"repetition loop ({loop[:40]!r} repeated)"
    if resp.truncated:
        n = resp.completion_tokens or request.max_tokens
        return "truncated", f"truncated at {n} tokens (max_tokens={request.max_tokens})"
    return None


def _next_request(base: ChatRequest, current: ChatRequest, kind: str, resp: ChatResponse,
                  error: str, retry_message: str | None, policy: CompletionPolicy) -> ChatRequest:
    seed = (current.seed or 0) + 1
    if kind == "truncated" and current.max_tokens < policy.max_tokens_cap:
        grown = min(policy.max_tokens_cap, int(current.max_tokens * policy.grow_tokens))
        return current.replace(max_tokens=grown)
    if kind in ("unparseable", "invalid") and retry_message:
        msgs = base.message_dicts + [
            {"role": "assistant", "content": resp.text},
            {"role": "user", "content": retry_message.replace("$error", error)}]
        return ChatRequest.build(msgs, tags=dict(base.tags), temperature=base.temperature,
                                 max_tokens=current.max_tokens, json_mode=base.json_mode,
                                 seed=seed, json_schema=base.json_schema,
                                 top_logprobs=base.top_logprobs, item=base.item,
                                 stage=base.stage)
    return current.replace(seed=seed)


async def complete(llm: _Chat, request: ChatRequest, parse: Callable[[ChatResponse], T], *,
                   policy: CompletionPolicy | None = None, retry_message: str | None = None
                   ) -> tuple[T, list[ChatResponse]]:
    """Ask until `parse` accepts a whole answer; returns the value and every response.
    `parse` raises ValueError (JSONOutputError for unparseable JSON) on an unusable answer."""
    policy = policy or DEFAULT_POLICY
    responses: list[ChatResponse] = []
    req, fresh, skipped = request, 0, 0
    kind, reason = "invalid", "no answer"
    while fresh < policy.attempts and skipped <= policy.max_skipped:
        resp = await llm.chat(req)
        responses.append(resp)
        fail = _failure(resp, req, policy)
        if fail is None:
            try:
                return parse(resp), responses
            except ValueError as e:
                fail = ("unparseable" if isinstance(e, JSONOutputError) else "invalid", str(e))
        kind, reason = fail
        if resp.cached and resp.unusable:
            skipped += 1  # known bad from an earlier run: not an attempt of this one
        else:
            fresh += 1
            mark = getattr(llm, "mark_unusable", None)
            if mark and resp.key:
                mark(resp.key, f"{kind}: {reason}")
        req = _next_request(request, req, kind, resp, reason, retry_message, policy)
    raise CompletionError(kind, f"{reason} (after {len(responses)} answers)", responses)


async def complete_json(llm: _Chat, request: ChatRequest, parse: Callable[[dict[str, Any]], T],
                        *, retry_message: str | None = None,
                        policy: CompletionPolicy | None = None
                        ) -> tuple[T, list[ChatResponse]]:
    """`complete` for a JSON object answer: `parse` receives the parsed object."""
    return await complete(llm, request, lambda r: parse(parse_json_object(r.text)),
                          policy=policy, retry_message=retry_message)


async def complete_text(llm: _Chat, request: ChatRequest, parse: Callable[[str], T], *,
                        policy: CompletionPolicy | None = None, retry_message: str | None = None
                        ) -> tuple[T, list[ChatResponse]]:
    """`complete` for a free-text answer: `parse` receives the answer text. With
    `retry_message`, an answer `parse` refuses is shown back with the error (else: new seed)."""
    return await complete(llm, request, lambda r: parse(r.text), policy=policy,
                          retry_message=retry_message)


async def chat_json(backend: _Chat, request: ChatRequest, retry_message: str,
                    retries: int = 1) -> tuple[dict[str, Any], list[ChatResponse]]:
    """Ask for a JSON object under the completion policy (see `policy.complete_json`), with
    `retries` retries; raises JSONOutputError with the last answer when none was usable."""
    try:
        return await complete_json(backend, request, lambda obj: obj, retry_message=retry_message,
                                   policy=CompletionPolicy(attempts=retries + 1))
    except CompletionError as e:
        raw = e.responses[-1].text if e.responses else ""
        raise JSONOutputError(str(e), raw) from None
