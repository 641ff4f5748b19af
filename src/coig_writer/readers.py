"""The one row reader every input path uses: txt/md, JSONL, JSON arrays, Parquet, and for
corpus ingest HTML pages and WARC files (`construct/web/`: main content and metadata).

- Paths are checked first (`check_input`): a folder, a device or a missing file is refused with
  an `InputError` naming it (the CLI exits 2), before anything is written.
- Text is decoded as UTF-8 with or without a byte-order mark (Windows editors and Excel write one).
- JSONL and Parquet are streamed (a line / a record batch at a time); a JSON array is read whole.
- A row that cannot be read carries an `error` (with file and line) instead of data; `validate`
  turns a row into a pydantic model or a `BadRecord` naming the field, so every caller
  quarantines it rather than dropping it or stopping.
- A web row may carry a `reason` (not HTML, no main content, ...): ingest stores it as filtered.
- Chat contents in OpenAI's list-of-parts form are normalised once (`text_content`).
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

if TYPE_CHECKING:
    from .construct.web.extract import ExtractOptions
    from .construct.web.rows import WebRow

TEXT_SUFFIXES = {".txt", ".md"}
ROW_SUFFIXES = {".jsonl", ".json", ".parquet"}
WEB_SUFFIXES = (".html", ".htm", ".warc", ".warc.gz")  # corpus ingest only (texts / folders)
BOM = "\ufeff"
M = TypeVar("M", bound=BaseModel)


class BadRecord(ValueError):
    """A row that cannot become a record; it goes to the quarantine."""


class InputError(ValueError):
    """An input path that cannot be read as rows at all (missing, a folder, not a file)."""


@dataclass
class RawRow:
    path: str
    line: int | None
    data: dict[str, Any] | None
    raw: str
    error: str | None = None
    reason: str | None = None  # a web record that is no page to keep: stored as filtered

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}" if self.line is not None else self.path


def check_input(path: Path, *, folders: bool = False, texts: bool = False) -> Path:
    """`path` if it is a readable rows file (with `texts` also .txt/.md; with `folders` also
    a folder, whose .txt/.md files count); else an InputError naming it."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise InputError(f"no such file: {path}") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
    if stat.S_ISDIR(mode):
        if folders:
            return path
        raise InputError(f"{path} is a folder; give a .jsonl, .json or .parquet file")
    if not stat.S_ISREG(mode):
        raise InputError(f"{path} is not a regular file (a device, pipe or socket)")
    if (folders or texts) and is_web(path):
        return path
    if path.suffix not in ROW_SUFFIXES | (TEXT_SUFFIXES if folders or texts else set()):
        raise InputError(f"{path}: unsupported file type {path.suffix or '(none)'!r}; "
                         f"use one of {', '.join(sorted(ROW_SUFFIXES))}"
                         + (f" or {', '.join(sorted(TEXT_SUFFIXES) + list(WEB_SUFFIXES))}"
                            if folders or texts else ""))
    return path


def is_web(path: Path) -> bool:
    """An HTML page or a WARC file (.html .htm .warc .warc.gz, any case)."""
    return path.name.lower().endswith(WEB_SUFFIXES)


def iter_files(paths: list[Path]) -> Iterator[Path]:
    """The files under `paths` (folders walked, sorted); every path is checked first."""
    for p in paths:
        check_input(p, folders=True)
    for p in paths:
        if p.is_dir():
            yield from sorted(f for f in p.rglob("*") if f.is_file()
                              and (f.suffix in TEXT_SUFFIXES | ROW_SUFFIXES or is_web(f)))
        else:
            yield p


def _front_matter(text: str) -> tuple[dict[str, Any], str]:
    if text.startswith("---\n"):
        end = text.find("\n---", 4)
        if end > 0:
            meta = yaml.safe_load(text[4:end]) or {}
            if not isinstance(meta, dict):
                raise BadRecord("front matter is not a mapping")
            return meta, text[end + 4:].lstrip("\n")
    return {}, text


def read_rows(path: Path, web: ExtractOptions | None = None) -> Iterator[RawRow]:
    """Yield the rows of one file; unreadable rows carry an `error` instead of `data`.
    `web`: how HTML and WARC files are read (trafilatura's defaults when None)."""
    name = str(path)
    try:
        check_input(path, texts=True)
    except InputError as e:
        yield RawRow(name, None, None, "", str(e))
        return
    if is_web(path):
        from .construct.web.rows import html_rows, is_html, warc_rows

        yield from web_rows(path, html_rows(path, web) if is_html(path) else warc_rows(path, web))
    elif path.suffix in TEXT_SUFFIXES:
        yield _text_file(path)
    elif path.suffix == ".jsonl":
        yield from _jsonl(path)
    elif path.suffix == ".json":
        yield from _json_array(path)
    else:
        yield from _parquet(path)


def web_rows(path: Path, rows: Iterator[WebRow]) -> Iterator[RawRow]:
    """The rows of an HTML or WARC reader as RawRows (the line of a WARC row: its offset)."""
    for r in rows:
        yield RawRow(str(path), r.line, r.data, r.raw, r.error, r.reason)


def _text_file(path: Path) -> RawRow:
    try:
        text = path.read_text("utf-8-sig")
        meta, body = _front_matter(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, BadRecord) as e:
        return RawRow(str(path), 1, None, "", f"{type(e).__name__}: {e}")
    if "title" not in meta:
        first = body.lstrip().split("\n", 1)[0]
        meta["title"] = first.lstrip("# ").strip() if first.startswith("#") else path.stem
    return RawRow(str(path), 1, {**meta, "text": body}, text[:2000])


def _jsonl(path: Path) -> Iterator[RawRow]:
    name = str(path)
    with path.open("rb") as f:
        for i, line in enumerate(f, 1):
            raw = line.decode("utf-8", errors="replace").lstrip(BOM)
            if not raw.strip():
                continue
            try:
                obj = json.loads(line.decode("utf-8").lstrip(BOM))
            except UnicodeDecodeError as e:
                yield RawRow(name, i, None, raw, f"not UTF-8 text: {e.reason} at byte {e.start}")
                continue
            except ValueError as e:
                yield RawRow(name, i, None, raw, f"invalid JSON: {e}")
                continue
            if isinstance(obj, dict):
                yield RawRow(name, i, obj, raw)
            else:
                yield RawRow(name, i, None, raw, f"expected a JSON object, got {type(obj).__name__}")


def _json_array(path: Path) -> Iterator[RawRow]:
    name = str(path)
    try:
        items = json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        yield RawRow(name, None, None, "", f"not UTF-8 text: {e.reason} at byte {e.start}")
        return
    except ValueError as e:
        yield RawRow(name, getattr(e, "lineno", None), None, "", f"invalid JSON: {e}")
        return
    items = items if isinstance(items, list) else [items]
    for i, obj in enumerate(items, 1):
        raw = json.dumps(obj, ensure_ascii=False)
        if isinstance(obj, dict):
            yield RawRow(name, i, obj, raw)
        else:
            yield RawRow(name, i, None, raw, "item is not a JSON object")


def _parquet(path: Path) -> Iterator[RawRow]:
    import pyarrow.parquet as pq

    i = 0
    try:  # streamed a record batch at a time: memory stays bounded on big files
        for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
            for obj in batch.to_pylist():
                i += 1
                yield RawRow(str(path), i, obj, json.dumps(obj, ensure_ascii=False, default=str))
    except Exception as e:  # pyarrow raises several types for corrupt files
        yield RawRow(str(path), i + 1 if i else None, None, "", f"unreadable parquet: {e}")


_TYPE_TAGS = {"str", "int", "float", "bool", "date", "datetime", "none", "bytes"}


def _is_tag(part: object) -> bool:
    """pydantic names the member of a union it tried in `loc` (`str`, `list[any]`, ...)."""
    return isinstance(part, str) and (part in _TYPE_TAGS or "[" in part
                                      or part.startswith("function-"))


def validation_message(e: ValidationError) -> str:
    """One clause per wrong field: `field 'title': Input should be a valid string (got 7)`;
    a value no member of a union takes reads `expected str or list[any]`."""
    by_field: dict[str, list[tuple[str | None, str]]] = {}
    got: dict[str, str] = {}
    for err in e.errors():
        loc = list(err["loc"])
        tag = loc.pop() if loc and _is_tag(loc[-1]) else None
        name = ".".join(str(x) for x in loc) or "row"
        by_field.setdefault(name, []).append((tag, err["msg"]))
        value = json.dumps(err.get("input"), ensure_ascii=False, default=str)
        got[name] = value if len(value) <= 60 else value[:57] + "..."
    parts = []
    for name, errs in by_field.items():
        tags = [t for t, _ in errs if t]
        msg = f"expected {' or '.join(tags)}" if len(errs) > 1 and len(tags) == len(errs) \
            else "; ".join(dict.fromkeys(m for _, m in errs))
        parts.append(f"field {name!r}: {msg} (got {got[name]})")
    return "; ".join(parts)


def validate(model: type[M], data: Any) -> M:
    """`data` as a `model`, or a BadRecord naming each wrong field."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise BadRecord(validation_message(e)) from None


def text_content(value: Any, field: str = "content") -> str:
    """A chat message's content as text: a string, or OpenAI's list of parts
    (`[{"type": "text", "text": ...}, ...]`, text parts joined; images and audio refused)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = []
        for j, part in enumerate(value):
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and part.get("type", "text") == "text" \
                    and isinstance(part.get("text"), str):
                texts.append(part["text"])
            else:
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise BadRecord(f"field {field!r}: part {j} is not text ({kind})")
        return "".join(texts)
    raise BadRecord(f"field {field!r}: expected text or a list of text parts, got "
                    f"{type(value).__name__}")
