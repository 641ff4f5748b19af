"""Ingest a corpus (txt/md folders, JSONL, JSON arrays, Parquet) into the store.

Every input row ends in exactly one place: a stored text (`ok`), a stored text marked
`filtered` with its reason (duplicate, length, date), or the quarantine with file:line and error.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..readers import BadRecord, iter_files, read_rows
from ..records import Provenance, QuarantineEntry, SourceText, content_hash
from ..store import Store
from .filters import NearDupIndex, date_reason, length_reason

TEXT_KEYS = ("text", "content", "article", "answer", "body", "paragraphs")
URL_KEYS = ("source_url", "url", "link", "source")
DATE_KEYS = ("date", "published", "publish_date", "published_at")
KNOWN_KEYS = {"id", "title", "author", "license", *TEXT_KEYS, *URL_KEYS, *DATE_KEYS}


@dataclass
class IngestOptions:
    min_chars: int = 12
    max_chars: int = 50_000
    after: dt.date | None = None
    require_date: bool = False
    near_dup_threshold: float = 0.8
    shingle: int = 5
    default_license: str | None = None


@dataclass
class IngestReport:
    read: int = 0
    added: int = 0
    already_stored: int = 0
    filtered: Counter[str] = field(default_factory=Counter)
    quarantined: list[QuarantineEntry] = field(default_factory=list)


def _first(d: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((d[k] for k in keys if d.get(k) not in (None, "", [])), None)


def parse_date(value: Any) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise BadRecord(f"unparseable date {value!r} (want YYYY-MM-DD)") from None


def to_source(row: dict[str, Any], origin: str, default_license: str | None) -> SourceText:
    """Map a row with loosely named fields onto a SourceText."""
    text = _first(row, TEXT_KEYS)
    if isinstance(text, list):
        text = "\n".join(str(t) for t in text)
    if not isinstance(text, str) or not text.strip():
        raise BadRecord(f"no text field (one of {', '.join(TEXT_KEYS)})")
    url = _first(row, URL_KEYS)
    prov = Provenance(source_url=str(url) if url else None, date=parse_date(_first(row, DATE_KEYS)),
                      license=row.get("license") or default_license, title=row.get("title"),
                      author=row.get("author"), origin=origin)
    meta = {k: v for k, v in row.items() if k not in KNOWN_KEYS}
    sid = str(row["id"]) if row.get("id") not in (None, "") else f"src-{content_hash(text)[:16]}"
    return SourceText(id=sid, text=text.strip(), provenance=prov,
                      meta=json.loads(json.dumps(meta, ensure_ascii=False, default=str)))


def ingest(paths: list[Path], store: Store, opts: IngestOptions | None = None,
           on_row: Any = None) -> IngestReport:
    """Read, validate, filter and store texts. Idempotent: re-ingesting adds nothing new."""
    opts = opts or IngestOptions()
    report = IngestReport()
    index = NearDupIndex(threshold=opts.near_dup_threshold, ngram=opts.shingle)
    for s in store.iter_sources("ok"):
        index.check_and_add(s.id, s.text)
    for path in iter_files(paths):
        for row in read_rows(path):
            report.read += 1
            if on_row:
                on_row()
            origin = f"{row.path}:{row.line}" if row.line is not None else row.path
            try:
                if row.error:
                    raise BadRecord(row.error)
                src = to_source(row.data or {}, origin, opts.default_license)
            except BadRecord as e:
                entry = QuarantineEntry(path=row.path, line=row.line, error=str(e), raw=row.raw)
                store.quarantine(entry)
                report.quarantined.append(entry)
                continue
            existing = store.get_source(src.id)
            if (existing is not None and existing.hash == src.hash
                    and existing.provenance.origin != origin):
                # the same text from another place: keep that row too, as a duplicate
                src.id = f"{src.id}~{hashlib.sha256(origin.encode()).hexdigest()[:8]}"
                src.duplicate_of = existing.id
                existing = store.get_source(src.id)
            if existing is not None:
                if existing.hash != src.hash:
                    entry = QuarantineEntry(
                        path=row.path, line=row.line, raw=row.raw,
                        error=f"id {src.id!r} already stored with a different text "
                              f"(from {existing.provenance.origin})")
                    store.quarantine(entry)
                    report.quarantined.append(entry)
                else:
                    report.already_stored += 1
                continue
            reason = (length_reason(src.text, opts.min_chars, opts.max_chars)
                      or date_reason(src.provenance.date, opts.after, opts.require_date))
            if reason is None and (dup := src.duplicate_of or store.source_with_hash(src.hash)):
                reason, src.duplicate_of = f"exact_duplicate of {dup}", dup
            if reason is None and (near := index.check_and_add(src.id, src.text)):
                reason = f"near_duplicate of {near[0]} (jaccard~{near[1]:.2f})"
                src.duplicate_of = near[0]
            if reason:
                src.status, src.filter_reason = "filtered", reason
                report.filtered[reason.split(":")[0].split(" ")[0]] += 1
            if store.add_source(src) and not reason:
                report.added += 1
    return report
