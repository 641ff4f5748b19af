"""JSON answers from models: parse strictly, from a fenced block, or repaired (asking again
is the completion policy's work: `policy.chat_json`)."""

from __future__ import annotations

import json
import re
from typing import Any

import json_repair

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
