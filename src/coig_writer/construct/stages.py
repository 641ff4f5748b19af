"""The construction stages, declared once: one `Stage` object per LLM step.

A stage is what distilabel calls a task: it names its template per layout, the variables that
template reads, how its answer is parsed (and the JSON Schema a server constrains it to), its
default sampling, the retry message shown when an answer is unusable, the integer fields read as
score distributions, and the LLM-free checks that apply to its output. The runner owns calls,
caching, retries and persistence; the config's defaults, the pipeline's round, the docs table
and the test stub's routing (the `X-Coig-Stage` header the backend sends) all come from `STAGES`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from ..genres import load_taxonomy
from ..records import SCORE_DIMENSIONS, Scores

PREFIX_TEMPLATE = "construct_prefix"  # the shared layout's common beginning (shared/prefix)


class StageOutputError(ValueError):
    """The model answered, but not in a usable form."""


class StageParams(BaseModel):
    """Sampling of one stage (config: `stages: {name: {...}}`)."""

    temperature: float = 0.0
    max_tokens: int = 512
    max_tokens_cap: int | None = Field(None, description="a truncated answer is retried with "
                                       "more tokens up to this (default 4 x max_tokens)")

    @property
    def cap(self) -> int:
        return self.max_tokens_cap or 4 * self.max_tokens


@dataclass(frozen=True)
class Stage:
    """One LLM step of construction (see the module docstring)."""

    name: str
    output: Literal["json", "text"]
    reads: tuple[str, ...]
    parse: Callable[[Any], dict[str, Any]]
    sampling: StageParams
    schema: dict[str, Any] | None = None
    retry: str | None = None  # template whose text is sent back with the error of an answer
    scored: tuple[str, ...] = ()  # integer fields read as distributions (top_logprobs)
    score_range: tuple[int, int] = (0, 10)
    checks: tuple[str, ...] = ()  # LLM-free checks of what this stage produces
    reseed: bool = False  # a new seed each round (generating stages); judging stages ask the
    # same question the same way, so a round that repeats a triplet replays its verdict
    doc: str = ""

    def template(self, layout: str) -> str:
        """The template this stage renders under `layout` (shared or legacy)."""
        return f"shared/{self.name}" if layout == "shared" else self.name

    @property
    def is_json(self) -> bool:
        return self.output == "json"


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


_FENCE = re.compile(r"```")
_WRAPPER = re.compile(r"(最终输出|最终答案|输出结果|final output|final answer)\s*[:：]", re.I)


def not_prose(text: str) -> str | None:
    """Why a reasoning is not prose (a JSON object or array, a code fence, an output wrapper),
    or None. The full set of form checks is `reasoning_not_prose` in construct.checks; this is
    the part a retry can fix at once."""
    t = text.strip()
    if t[:1] in "{[":
        try:
            json.loads(t)
            return "the answer is a JSON " + ("object" if t[0] == "{" else "array")
        except ValueError:
            if t[:1] == "{" and re.match(r'\{\s*"', t):
                return "the answer is laid out as a JSON object"
    if _FENCE.search(t):
        return "the answer contains a code block"
    if _WRAPPER.search(t):
        return "the answer wraps itself in a 'final output' section"
    return None


def parse_reasoning(text: str) -> dict[str, Any]:
    t = clean_text(text)
    if not t:
        raise StageOutputError("empty reasoning")
    why = not_prose(text)
    if why:
        raise StageOutputError(why)
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


# JSON Schemas mirror what the parsers require, so a schema-conforming answer always parses;
# property order is the generation order.
_SCREEN_SCHEMA = {"type": "object", "properties": {
    "quality": _int(), "creativity": _int(), "category": {"type": "string"},
    "genre": {"type": "string"}, "reason": {"type": "string"}},
    "required": ["quality", "creativity", "category", "genre", "reason"]}
_VALIDATE_SCHEMA = {"type": "object", "properties": {
    "coherent": {"type": "boolean"},
    "issues": {"type": "array", "items": {"type": "string"}},
    "suggestion": {"type": "string"}},
    "required": ["coherent", "issues", "suggestion"]}
_SCORE_SCHEMA = {"type": "object", "properties": {
    **{d: _int() for d in SCORE_DIMENSIONS}, "comment": {"type": "string"}},
    "required": [*SCORE_DIMENSIONS, "comment"]}

PROMPT_CHECKS = ("prompt_copies_text", "prompt_parrots_instructions", "prompt_mentions_source",
                 "prompt_requirements")
REASONING_CHECKS = ("reasoning_too_short", "reasoning_not_prose", "reasoning_copies_text",
                    "reasoning_misses_requirements", "reasoning_lacks_decisions",
                    "reasoning_length_ratio", "reasoning_not_grounded", "reasoning_generic",
                    "reasoning_not_first_person", "form_mismatches_genre")

STAGES: tuple[Stage, ...] = (
    Stage("screen", "json", ("article", "title", "genres"), parse_screen,
          StageParams(temperature=0.0, max_tokens=200), _SCREEN_SCHEMA, retry="json_retry",
          scored=("quality", "creativity"),
          doc="quality and creativity 0-10 (keep >= screen_threshold) and a genre"),
    Stage("reconstruct_prompt", "text", ("article", "title", "genre_name", "feedback"),
          parse_prompt, StageParams(temperature=0.7, max_tokens=400), checks=PROMPT_CHECKS,
          reseed=True, doc="the instruction a user could have given for the text"),
    Stage("reasoning", "text", ("prompt", "article", "title", "feedback"), parse_reasoning,
          StageParams(temperature=0.7, max_tokens=1200), retry="prose_retry",
          checks=REASONING_CHECKS, reseed=True,
          doc="first-person thinking from the instruction to the text, as prose"),
    Stage("validate", "json", ("prompt", "reasoning", "article", "title"), parse_validate,
          StageParams(temperature=0.0, max_tokens=300), _VALIDATE_SCHEMA, retry="json_retry",
          doc="is the triplet coherent; issues and a suggestion"),
    Stage("score", "json", ("prompt", "reasoning", "article", "title"), parse_score,
          StageParams(temperature=0.0, max_tokens=300), _SCORE_SCHEMA, retry="json_retry",
          scored=SCORE_DIMENSIONS,
          doc="six scores 0-10 (accept when each >= min_each and the sum >= min_sum)"),
)
BY_NAME: dict[str, Stage] = {s.name: s for s in STAGES}
STAGE_NAMES = tuple(BY_NAME)
RETRY_TEMPLATES = tuple(sorted({s.retry for s in STAGES if s.retry}))


def stage(name: str) -> Stage:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown stage {name!r}; stages: {', '.join(STAGE_NAMES)}") from None


def stage_table() -> list[dict[str, Any]]:
    """One row per stage (docs, `construct stages`)."""
    return [{"stage": s.name, "output": s.output, "reads": list(s.reads),
             "temperature": s.sampling.temperature, "max_tokens": s.sampling.max_tokens,
             "scored": list(s.scored), "checks": list(s.checks), "doc": s.doc} for s in STAGES]
