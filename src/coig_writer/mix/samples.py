"""SFT samples from triplets and from general datasets in chat or prompt/response form."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..langid import detect_language
from ..readers import BadRecord, read_rows, text_content, validate
from ..records import QuarantineEntry, Triplet

PROMPT_KEYS = ("prompt", "instruction", "query", "question", "input")
RESPONSE_KEYS = ("response", "output", "answer", "completion", "chosen")
REASONING_KEYS = ("reasoning", "thought", "thinking", "reasoning_content", "think")
_THINK = re.compile(r"^\s*<think>(.*?)</think>\s*", re.S)


class SFTSample(BaseModel):
    """One training example: a single user turn and the assistant's reasoning and answer."""

    id: str
    source: str
    kind: str  # creative or general
    lang: str | None = None
    prompt: str
    reasoning: str = ""
    response: str
    category: str | None = None
    genre: str | None = None


class BadSample(ValueError):
    pass


def _first(d: dict[str, Any], keys: tuple[str, ...]) -> str:
    for k in keys:
        v = d.get(k)
        if isinstance(v, str) and v.strip():
            return v
    return ""


def _split(text: str) -> tuple[str, str]:
    m = _THINK.match(text)
    return (m.group(1).strip(), text[m.end():].strip()) if m else ("", text.strip())


class ChatTurn(BaseModel):
    """One message of a chat row (OpenAI `role`/`content` or ShareGPT `from`/`value`)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    role: str | None = None
    sender: str | None = Field(None, alias="from")
    content: str | list[Any] | None = None
    value: str | list[Any] | None = None
    reasoning_content: str | None = None

    def text(self) -> str:
        return text_content(self.content if self.content is not None else self.value)


class GeneralRow(BaseModel):
    """The fields of a general row whose types matter (others are ignored)."""

    model_config = ConfigDict(extra="allow")
    id: str | int | None = None
    lang: str | None = None
    language: str | None = None
    messages: list[ChatTurn] | None = None
    conversations: list[ChatTurn] | None = None


def parse_general_row(row: dict[str, Any], source: str, sid: str) -> SFTSample:
    """Chat rows (`messages` or `conversations`, one user and one assistant turn; contents as
    text or OpenAI's list of text parts; reasoning in `reasoning_content` or a leading <think>
    block) or prompt/response rows (with optional reasoning field)."""
    try:
        g = validate(GeneralRow, row)
    except BadRecord as e:
        raise BadSample(str(e)) from None
    msgs = g.messages if g.messages is not None else g.conversations
    if msgs is not None:
        role = {"human": "user", "gpt": "assistant"}
        turns = [(role.get(m.role or m.sender or "", m.role or m.sender), m) for m in msgs]
        users = [m for r, m in turns if r == "user"]
        bots = [m for r, m in turns if r == "assistant"]
        if len(users) != 1 or len(bots) != 1:
            raise BadSample(f"need exactly one user and one assistant turn, got {len(users)} "
                            f"and {len(bots)}")
        try:
            prompt = users[0].text()
            reasoning, response = _split(bots[0].text())
        except BadRecord as e:
            raise BadSample(str(e)) from None
        reasoning = bots[0].reasoning_content or reasoning
    else:
        prompt = _first(row, PROMPT_KEYS)
        reasoning, response = _split(_first(row, RESPONSE_KEYS))
        reasoning = _first(row, REASONING_KEYS) or reasoning
    if not prompt.strip() or not response.strip():
        raise BadSample("missing prompt or response")
    lang = g.lang or g.language or detect_language(prompt + response)
    return SFTSample(id=str(g.id or sid), source=source, kind="general", lang=lang,
                     prompt=prompt.strip(), reasoning=str(reasoning).strip(),
                     response=response.strip())


def read_general(path: Path) -> tuple[list[SFTSample], list[QuarantineEntry]]:
    """All samples of a general dataset file; malformed rows come back with file:line."""
    good, bad = [], []
    for row in read_rows(path):
        try:
            if row.error or row.data is None:
                raise BadSample(row.error or "empty row")
            good.append(parse_general_row(row.data, path.name, f"{path.stem}:{row.line}"))
        except (ValueError, TypeError) as e:  # BadSample, or a field of the wrong type
            bad.append(QuarantineEntry(path=row.path, line=row.line, error=str(e), raw=row.raw))
    return good, bad


def from_triplets(triplets: Iterator[Triplet] | list[Triplet], source: str = "coig-writer"
                  ) -> list[SFTSample]:
    return [SFTSample(id=t.id, source=source, kind="creative", lang="zh", prompt=t.query,
                      reasoning=t.thought, response=t.answer, category=t.category,
                      genre=t.genre) for t in triplets if t.query and t.answer]
