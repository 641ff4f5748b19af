"""One task per construction stage: which template it renders and how it parses the answer.

Like distilabel tasks, a stage only formats input and parses output; the runner owns calls,
caching, retries and persistence.
"""

from __future__ import annotations

import re
from typing import Any

from ..genres import load_taxonomy
from ..records import SCORE_DIMENSIONS, Scores


class StageOutputError(ValueError):
    """The model answered, but not in a usable form."""


def as_score(value: Any, name: str) -> int:
    try:
        v = round(float(str(value).strip().split("/")[0]))
    except (TypeError, ValueError):
        raise StageOutputError(f"{name} is not a number: {value!r}") from None
    if not 0 <= v <= 10:
        raise StageOutputError(f"{name}={v} is outside 0-10")
    return v


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    s = str(value).strip().lower()
    if s in ("true", "yes", "1", "是", "连贯", "通过"):
        return True
    if s in ("false", "no", "0", "否", "不连贯", "不通过"):
        return False
    raise StageOutputError(f"not a boolean: {value!r}")


_LABEL = re.compile(r"^\s*(写作指令|指令|用户指令|思考过程|instruction|prompt|thinking)\s*[:：]\s*",
                    re.IGNORECASE)
_THINK = re.compile(r"</?think>", re.IGNORECASE)
_PREAMBLE = re.compile(r"^[^\n]{0,60}(指令|instruction|prompt)[^\n]{0,12}[:：]\s*\n", re.IGNORECASE)


_RULE = re.compile(r"^\s*(?:-{3,}|\*{3,}|={3,})\s*$", re.M)


def clean_text(text: str) -> str:
    """Strip code fences, <think> tags, preambles around `---` rules, a leading label and
    wrapping quotes from free text."""
    t = _THINK.sub("", text).strip()
    blocks = [b.strip() for b in _RULE.split(t) if b.strip()]
    if len(blocks) >= 3:  # "Here is the prompt: --- PROMPT --- Notes": keep the middle
        t = max(blocks[1:-1], key=len)
    if t.startswith("```"):
        t = t.strip("`").split("\n", 1)[-1].strip()
    t = _PREAMBLE.sub("", t, count=1).strip()
    t = _LABEL.sub("", t, count=1).strip()
    if len(t) > 1 and t[0] + t[-1] in ('""', "“”", "「」"):
        t = t[1:-1].strip()
    return t


def parse_screen(obj: dict[str, Any]) -> dict[str, Any]:
    for k in ("quality", "creativity"):
        if k not in obj:
            raise StageOutputError(f"screen answer lacks {k!r}")
    tax = load_taxonomy()
    cat, genre = tax.resolve(str(obj.get("genre") or ""))
    if cat is None:
        cat = tax.resolve(str(obj.get("category") or ""))[0]
    return {"quality": as_score(obj["quality"], "quality"),
            "creativity": as_score(obj["creativity"], "creativity"),
            "category": cat, "genre": genre,
            "genre_raw": obj.get("genre"), "reason": str(obj.get("reason", ""))}


def parse_prompt(text: str) -> dict[str, Any]:
    t = clean_text(text)
    if len(t) < 10:
        raise StageOutputError(f"reconstructed prompt too short ({len(t)} chars)")
    return {"prompt": t}


_NON_WORD = re.compile(r"[\s\W_]+")


def copied_span(prompt: str, article: str, span: int = 10) -> str | None:
    """The first run of `span` characters (punctuation and spaces ignored) of the prompt that
    also occurs in the article: a prompt that quotes whole lines dictates the text."""
    compact = _NON_WORD.sub("", prompt)
    body = _NON_WORD.sub("", article)
    for i in range(max(0, len(compact) - span + 1)):
        if compact[i:i + span] in body:
            return compact[i:i + span]
    return None


def parse_reasoning(text: str) -> dict[str, Any]:
    t = clean_text(text)
    if not t:
        raise StageOutputError("empty reasoning")
    return {"reasoning": t}


def parse_validate(obj: dict[str, Any]) -> dict[str, Any]:
    if "coherent" not in obj:
        raise StageOutputError("validation answer lacks 'coherent'")
    issues = obj.get("issues") or []
    if isinstance(issues, str):
        issues = [issues]
    return {"coherent": as_bool(obj["coherent"]), "issues": [str(i) for i in issues if str(i)],
            "suggestion": str(obj.get("suggestion", ""))}


def parse_score(obj: dict[str, Any]) -> dict[str, Any]:
    missing = [d for d in SCORE_DIMENSIONS if d not in obj]
    if missing:
        raise StageOutputError(f"score answer lacks {missing}")
    scores = Scores(**{d: as_score(obj[d], d) for d in SCORE_DIMENSIONS})
    return {"scores": scores.model_dump(), "comment": str(obj.get("comment", ""))}


def _int(lo: int = 0, hi: int = 10) -> dict[str, Any]:
    return {"type": "integer", "minimum": lo, "maximum": hi}


# JSON Schemas the server constrains JSON stages to (where it supports `json_schema`); they
# mirror what the parsers above require, so a schema-conforming answer always parses.
SCHEMAS: dict[str, dict[str, Any]] = {
    "screen": {"type": "object", "properties": {
        "quality": _int(), "creativity": _int(), "category": {"type": "string"},
        "genre": {"type": "string"}, "reason": {"type": "string"}},
        "required": ["quality", "creativity", "category", "genre", "reason"]},
    "validate": {"type": "object", "properties": {
        "coherent": {"type": "boolean"},
        "issues": {"type": "array", "items": {"type": "string"}},
        "suggestion": {"type": "string"}},
        "required": ["coherent", "issues", "suggestion"]},
    "score": {"type": "object", "properties": {
        **{d: _int() for d in SCORE_DIMENSIONS}, "comment": {"type": "string"}},
        "required": [*SCORE_DIMENSIONS, "comment"]},
}

PARSERS = {
    "screen": parse_screen,
    "reconstruct_prompt": parse_prompt,
    "reasoning": parse_reasoning,
    "validate": parse_validate,
    "score": parse_score,
}
