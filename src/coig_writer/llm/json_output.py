"""JSON answers from models: parse, repair, or ask again."""

from __future__ import annotations

import json
import re
from typing import Any

import json_repair

from .base import Backend, ChatRequest, ChatResponse

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


class JSONOutputError(ValueError):
    def __init__(self, message: str, raw: str):
        super().__init__(message)
        self.raw = raw


def parse_json_object(text: str) -> dict[str, Any]:
    """Parse a JSON object from model output: strict first, then fenced, then repaired."""
    candidates = [text.strip()]
    candidates += [m.strip() for m in _FENCE.findall(text)]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start:end + 1])
    for c in candidates:
        try:
            obj = json.loads(c)
        except ValueError:
            continue
        if isinstance(obj, dict):
            return obj
    for c in candidates[::-1]:
        obj = json_repair.loads(c) if c else None
        if isinstance(obj, dict) and obj:
            return obj
    raise JSONOutputError("no JSON object found in model output", text)


async def chat_json(backend: Backend, request: ChatRequest, retry_message: str,
                    retries: int = 1) -> tuple[dict[str, Any], list[ChatResponse]]:
    """Ask for a JSON object under the completion policy (see `policy.complete_json`), with
    `retries` retries; raises JSONOutputError with the last answer when none was usable."""
    from .policy import CompletionError, CompletionPolicy, complete_json

    try:
        return await complete_json(backend, request, lambda obj: obj, retry_message=retry_message,
                                   policy=CompletionPolicy(attempts=retries + 1))
    except CompletionError as e:
        raw = e.responses[-1].text if e.responses else ""
        raise JSONOutputError(str(e), raw) from None
