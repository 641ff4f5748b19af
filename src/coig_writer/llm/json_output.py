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
    """Ask for a JSON object; on unparseable output, append the answer and `retry_message`
    (with `$error` filled) and ask again, up to `retries` times. Returns the object and every
    response (for the record)."""
    responses: list[ChatResponse] = []
    req = request
    for attempt in range(retries + 1):
        resp = await backend.chat(req)
        responses.append(resp)
        try:
            return parse_json_object(resp.text), responses
        except JSONOutputError as e:
            if attempt == retries:
                raise JSONOutputError(f"{e} after {retries + 1} attempts", resp.text) from None
            msgs = req.message_dicts + [
                {"role": "assistant", "content": resp.text},
                {"role": "user", "content": retry_message.replace("$error", str(e))},
            ]
            req = ChatRequest.build(msgs, tags=dict(req.tags), temperature=req.temperature,
                                    max_tokens=req.max_tokens, json_mode=req.json_mode,
                                    seed=req.seed)
    raise AssertionError("unreachable")
