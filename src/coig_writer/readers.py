"""Row readers for corpus and dataset files: txt/md, JSONL, JSON arrays, Parquet.

JSONL and Parquet are streamed (a line / a record batch at a time); a JSON array is one
document and is read whole.

Rows that cannot be read carry an `error` (with file and line) instead of data, so callers can
quarantine them rather than drop them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

TEXT_SUFFIXES = {".txt", ".md"}
ROW_SUFFIXES = {".jsonl", ".json", ".parquet"}


class BadRecord(ValueError):
    """A row that cannot become a record; it goes to the quarantine."""


@dataclass
class RawRow:
    path: str
    line: int | None
    data: dict[str, Any] | None
    raw: str
    error: str | None = None


def iter_files(paths: list[Path]) -> Iterator[Path]:
    for p in paths:
        if p.is_dir():
            yield from sorted(f for f in p.rglob("*")
                              if f.is_file() and f.suffix in TEXT_SUFFIXES | ROW_SUFFIXES)
        elif p.exists():
            yield p
        else:
            raise FileNotFoundError(f"no such file or folder: {p}")


def _front_matter(text: str) -> tuple[dict[str, Any], str]:
    if text.startswith("---\n"):
        end = text.find("\n---", 4)
        if end > 0:
            meta = yaml.safe_load(text[4:end]) or {}
            if not isinstance(meta, dict):
                raise BadRecord("front matter is not a mapping")
            return meta, text[end + 4:].lstrip("\n")
    return {}, text


def read_rows(path: Path) -> Iterator[RawRow]:
    """Yield the rows of one file; unreadable rows carry an `error` instead of `data`."""
    name = str(path)
    if path.suffix in TEXT_SUFFIXES:
        try:
            text = path.read_text("utf-8")
            meta, body = _front_matter(text)
        except (UnicodeDecodeError, yaml.YAMLError, BadRecord) as e:
            yield RawRow(name, 1, None, "", f"{type(e).__name__}: {e}")
            return
        if "title" not in meta:
            first = body.lstrip().split("\n", 1)[0]
            meta["title"] = first.lstrip("# ").strip() if first.startswith("#") else path.stem
        yield RawRow(name, 1, {**meta, "text": body}, text[:2000])
    elif path.suffix == ".jsonl":
        with path.open("rb") as f:
            for i, line in enumerate(f, 1):
                raw = line.decode("utf-8", errors="replace")
                if not raw.strip():
                    continue
                try:
                    obj = json.loads(line.decode("utf-8"))
                    if not isinstance(obj, dict):
                        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
                    yield RawRow(name, i, obj, raw)
                except ValueError as e:
                    yield RawRow(name, i, None, raw, f"invalid JSON: {e}")
    elif path.suffix == ".json":
        try:
            items = json.loads(path.read_text("utf-8"))
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
    elif path.suffix == ".parquet":
        import pyarrow.parquet as pq

        i = 0
        try:  # streamed a record batch at a time: memory stays bounded on big files
            for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
                for obj in batch.to_pylist():
                    i += 1
                    yield RawRow(name, i, obj, json.dumps(obj, ensure_ascii=False, default=str))
        except Exception as e:  # pyarrow raises several types for corrupt files
            yield RawRow(name, i + 1 if i else None, None, "", f"unreadable parquet: {e}")
    else:
        yield RawRow(name, None, None, "", f"unsupported file type {path.suffix!r}")


