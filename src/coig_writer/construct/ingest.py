"""Ingest a corpus (txt/md folders, JSONL, JSON arrays, Parquet, HTML pages, WARC files) into
the store.

Every input row ends in exactly one place: a stored text (`ok`), a stored text marked
`filtered` with its reason (duplicate, length, date, language, a quality pre-filter; for web
records also not HTML, no main content), or the quarantine with file:line and error.
Rows are streamed and committed in batches (a kill -9 loses at most the open batch, which a
rerun redoes); the near-duplicate index lives in the store, so each text is hashed once.

Filters are re-evaluable: `refilter` re-applies them to every stored text, and a re-ingest
with other options counts the stored texts they would change (it does not change them itself:
re-applying is `refilter`'s job, so a re-ingest never silently rewrites earlier decisions).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from ..readers import BadRecord, RawRow, check_input, is_web, iter_files, read_rows, validate
from ..records import Provenance, QuarantineEntry, SourceText, content_hash
from ..store import Store
from .filters import (
    NearDupIndex,
    date_reason,
    digest_of,
    length_reason,
    normalize_fast,
    reason_key,
)
from .web.extract import WEB_FIELDS, ExtractOptions
from .web.quality import FILTERS, PrefilterConfig, prefilter_reason
from .where import Condition, check_fields, where_reason

TEXT_KEYS = ("text", "content", "article", "answer", "body", "paragraphs")
URL_KEYS = ("source_url", "url", "link", "source")
DATE_KEYS = ("date", "published", "publish_date", "published_at")
KNOWN_KEYS = {"id", "title", "author", "license", *TEXT_KEYS, *URL_KEYS, *DATE_KEYS}
# the filter reasons this module decides (and `refilter` may revise)
CHEAP_REASONS = {"too_short", "too_long", "no_date", "before_cutoff", "where", "other_language",
                 *(name for name, _ in FILTERS)}
OUR_REASONS = CHEAP_REASONS | {"exact_duplicate", "near_duplicate"}


@dataclass
class IngestOptions:
    min_chars: int = 12
    max_chars: int = 50_000
    after: dt.date | None = None
    require_date: bool = False
    near_dup_threshold: float = 0.8
    shingle: int = 5
    default_license: str | None = None
    batch_size: int = 1000  # rows per transaction (and per vectorised hashing call)
    where: tuple[Condition, ...] = ()  # metadata conditions (`--where likes>=5000`)
    to_simplified: bool = False  # opencc t2s before hashing; the original kept in meta
    langs: tuple[str, ...] = ()  # keep these languages only (ISO 639-1, e.g. zh)
    prefilter: PrefilterConfig | None = None  # cheap quality pre-filters (None: off)
    web: ExtractOptions | None = None  # how HTML / WARC pages are read


@dataclass
class IngestReport:
    read: int = 0
    added: int = 0
    already_stored: int = 0
    filtered: Counter[str] = field(default_factory=Counter)
    quarantined: list[QuarantineEntry] = field(default_factory=list)
    hashed: int = 0  # new texts whose MinHash this run computed
    backfilled: int = 0  # stored texts that had no signature yet (older stores), hashed once
    indexed: int = 0  # signatures in the store's index at the start (not recomputed)
    batches: int = 0  # committed transactions
    layout: str = ""  # LSH bands x rows
    would_change: Counter[str] = field(default_factory=Counter)  # "no_date -> ok": see refilter


class CorpusRow(BaseModel):
    """The types a corpus row's known fields must have (other fields are kept as metadata)."""

    model_config = ConfigDict(extra="allow")
    id: str | int | None = None
    title: str | None = None
    author: str | None = None
    license: str | None = None
    text: str | list[str] | None = None
    content: str | list[str] | None = None
    article: str | list[str] | None = None
    answer: str | list[str] | None = None
    body: str | list[str] | None = None
    paragraphs: str | list[str] | None = None
    date: str | dt.datetime | dt.date | None = None
    published: str | dt.datetime | dt.date | None = None
    publish_date: str | dt.datetime | dt.date | None = None
    published_at: str | dt.datetime | dt.date | None = None


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


def to_source(row: dict[str, Any], origin: str, default_license: str | None,
              digest: Callable[[str], str] = content_hash, *,
              convert: Callable[[str], str] | None = None, reason: str | None = None) -> SourceText:
    """Map a row with loosely named fields onto a SourceText (BadRecord naming the field when
    a known field has the wrong type). `convert`: applied to text and title first (the
    originals are kept in meta when it changes them). `reason`: a record that is filtered
    already (a web record with no page): it may have no text; its id comes from its origin."""
    validate(CorpusRow, row)
    text = _first(row, TEXT_KEYS)
    if isinstance(text, list):
        text = "\n".join(str(t) for t in text)
    if reason is not None and not (isinstance(text, str) and text.strip()):
        text = ""
    elif not isinstance(text, str) or not text.strip():
        raise BadRecord(f"no text field (one of {', '.join(TEXT_KEYS)})")
    meta = {k: v for k, v in row.items() if k not in KNOWN_KEYS}
    title = row.get("title")
    if convert is not None and text:
        if (new := convert(text)) != text:
            meta["original_text"], text = text, new
        if title and (new := convert(title)) != title:
            meta["original_title"], title = title, new
    url = _first(row, URL_KEYS)
    prov = Provenance(source_url=str(url) if url else None, date=parse_date(_first(row, DATE_KEYS)),
                      license=row.get("license") or default_license, title=title,
                      author=row.get("author"), origin=origin)
    if row.get("id") not in (None, ""):
        sid = str(row["id"])
    elif not text:
        sid = f"web-{hashlib.sha256(origin.encode()).hexdigest()[:16]}"
    else:
        sid = f"src-{digest(text)[:16]}"
    src = SourceText(id=sid, text=text.strip(), provenance=prov,
                     meta=json.loads(json.dumps(meta, ensure_ascii=False, default=str)))
    if reason is not None:
        src.status, src.filter_reason = "filtered", reason
    return src


@dataclass
class ParsedRow:
    """One input row: its text (or why it is quarantined), normalized once for all checks;
    `reason`: filtered by its reader already; `sig`: its MinHash signature when a Ray worker
    computed it."""

    row: RawRow
    src: SourceText | None = None
    bad: QuarantineEntry | None = None
    norm: str = ""
    digest: str = ""
    reason: str | None = None
    sig: bytes | None = None


def lang_reason(src: SourceText, langs: tuple[str, ...]) -> str | None:
    """`other_language` unless the text's language (meta `lang`, else detected) is in `langs`."""
    if not langs:
        return None
    from .web.script import detect_language

    lang = src.meta.get("lang") or detect_language(src.text)
    return None if lang in langs else f"other_language: {lang} not in {','.join(langs)}"


def cheap_reason(src: SourceText, opts: IngestOptions, norm: str | None = None) -> str | None:
    """The first filter a text fails before the duplicate checks (None: it passes them)."""
    return (length_reason(src.text, opts.min_chars, opts.max_chars,
                          None if norm is None else len(norm))
            or date_reason(src.provenance.date, opts.after, opts.require_date)
            or where_reason(src.meta, opts.where)
            or lang_reason(src, opts.langs)
            or prefilter_reason(src.text, opts.prefilter))


def _row_metas(paths: list[Path], opts: IngestOptions) -> Iterator[dict[str, Any]]:
    """The metadata ingest would keep of every readable row (for checking --where fields);
    a web file declares its fields (extracting every page only to check names would double
    the cost of a crawl)."""
    signals = opts.web.signals if opts.web else None
    for path in iter_files(paths):
        if is_web(path):
            yield dict.fromkeys((*WEB_FIELDS, *(signals.fields if signals else ())))
            continue
        for row in read_rows(path):
            if isinstance(row.data, dict):
                yield {k: v for k, v in row.data.items() if k not in KNOWN_KEYS}


def record_where(store: Store, conds: tuple[Condition, ...]) -> None:
    """Remember the metadata conditions in force, for the dataset card."""
    with store.transaction():
        store.corpus.set_corpus_meta("where", json.dumps([str(c) for c in conds], ensure_ascii=False))


def _batches(paths: list[Path], size: int, web: ExtractOptions | None) -> Iterator[list[RawRow]]:
    rows = (row for path in iter_files(paths) for row in read_rows(path, web))
    while batch := list(islice(rows, max(1, size))):
        yield batch


def ingest(paths: list[Path], store: Store, opts: IngestOptions | None = None,
           on_row: Callable[[], Any] | None = None) -> IngestReport:
    """Read, validate, filter and store texts. Idempotent: re-ingesting adds nothing new."""
    opts = opts or IngestOptions()
    index, report = start_ingest(paths, store, opts)
    for batch in _batches(paths, opts.batch_size, opts.web):
        store_batch([parse_row(row, opts) for row in batch], store, opts, index, report, on_row)
    report.hashed = index.hashed - report.backfilled
    return report


def start_ingest(paths: list[Path], store: Store, opts: IngestOptions
                 ) -> tuple[NearDupIndex, IngestReport]:
    """Check the inputs and conditions (before anything is written) and ready the index."""
    for p in paths:  # fail before writing anything (InputError names the path)
        check_input(p, folders=True)
    if opts.where:  # a field no row has is a typo, not a filter: WhereError before writing
        check_fields(opts.where, _row_metas(paths, opts))
        record_where(store, opts.where)
    report = IngestReport()
    index = NearDupIndex(store, threshold=opts.near_dup_threshold, ngram=opts.shingle)
    report.backfilled = index.prepare()
    report.indexed, report.layout = store.corpus.count_minhash(), index.layout
    return index, report


def store_batch(parsed: list[ParsedRow], store: Store, opts: IngestOptions, index: NearDupIndex,
                report: IngestReport, on_row: Callable[[], Any] | None = None) -> None:
    """Decide and store one batch of parsed rows in one transaction, in order."""
    with store.transaction():
        _ingest_batch(parsed, store, opts, index, report, on_row)
    report.batches += 1


def parse_row(row: RawRow, opts: IngestOptions) -> ParsedRow:
    """A row as a SourceText (converted, normalized and hashed) or a quarantine entry; needs
    no store (Ray workers run it)."""
    origin = f"{row.path}:{row.line}" if row.line is not None else row.path
    p = ParsedRow(row, reason=row.reason)

    def digest(text: str) -> str:
        p.norm = normalize_fast(text)
        p.digest = digest_of(p.norm)
        return p.digest

    try:
        if row.error:
            raise BadRecord(row.error)
        convert = None
        if opts.to_simplified:
            from .web.script import to_simplified as convert
        p.src = to_source(row.data or {}, origin, opts.default_license, digest, convert=convert,
                          reason=row.reason)
        if not p.digest:  # (normalizing strips, so the raw text's digest is the stored one's)
            digest(p.src.text)
    except (ValueError, TypeError) as e:  # BadRecord, pydantic's ValidationError, ...
        p.src = None
        p.bad = QuarantineEntry(path=row.path, line=row.line, error=str(e), raw=row.raw)
    return p


def _ingest_batch(parsed: list[ParsedRow], store: Store, opts: IngestOptions, index: NearDupIndex,
                  report: IngestReport, on_row: Callable[[], Any] | None) -> None:
    index.load({p.digest: p.sig for p in parsed if p.sig is not None})
    # hash at once every text that may reach the near-duplicate check
    todo = [p for p in parsed if p.src is not None and p.sig is None and p.reason is None
            and cheap_reason(p.src, opts, p.norm) is None
            and store.corpus.source_digest(p.src.id) is None
            and store.corpus.source_with_hash(p.digest) is None]
    index.compute([p.norm for p in todo], [p.digest for p in todo], normalized=True)
    for p in parsed:
        report.read += 1
        if on_row:
            on_row()
        if p.src is None:
            _quarantine(store, report, p.bad)
            continue
        try:  # one bad row never rolls back the good ones of its batch
            _store_row(p, store, opts, index, report)
        except (ValueError, TypeError) as e:
            _quarantine(store, report, QuarantineEntry(path=p.row.path, line=p.row.line,
                                                       raw=p.row.raw, error=str(e)))
    index.forget()


def _store_row(p: ParsedRow, store: Store, opts: IngestOptions, index: NearDupIndex,
               report: IngestReport) -> None:
    """Store one parsed row: ok, filtered (with its reason), already stored, or quarantined."""
    row, src = p.row, p.src
    assert src is not None
    origin = src.provenance.origin
    stored = store.corpus.source_digest(src.id)
    if stored == p.digest:
        existing = store.corpus.get_source(src.id)
        assert existing is not None
        if existing.provenance.origin != origin:
            # the same text from another place: keep that row too, as a duplicate
            src.id = f"{src.id}~{hashlib.sha256(str(origin).encode()).hexdigest()[:8]}"
            stored = store.corpus.source_digest(src.id)
            existing = store.corpus.get_source(src.id) if stored == p.digest else None
        if existing is not None:
            report.already_stored += 1
            if change := _would_change(existing, opts):
                report.would_change[change] += 1
            return
    if stored is not None:
        other = store.corpus.get_source(src.id)
        _quarantine(store, report, QuarantineEntry(
            path=row.path, line=row.line, raw=row.raw,
            error=f"id {src.id!r} already stored with a different text "
                  f"(from {other.provenance.origin if other else '?'})"))
        return
    reason = p.reason or cheap_reason(src, opts, p.norm)
    if reason is None and (dup := store.corpus.source_with_hash(p.digest)):
        reason, src.duplicate_of = f"exact_duplicate of {dup}", dup
    if reason is None and not index.has_signature(p.digest):  # a copy of a filtered text
        index.compute([p.norm], [p.digest], normalized=True)
    if reason is None and (near := index.check(src.id, src.text, p.digest)):
        reason = f"near_duplicate of {near[0]} (jaccard {near[1]:.2f})"
        src.duplicate_of = near[0]
    if reason:
        src.status, src.filter_reason = "filtered", reason
        report.filtered[reason_key(reason)] += 1
    if store.corpus.insert_source(src, p.digest):
        index.add(src.id, p.digest)
        if not reason:
            report.added += 1


def _quarantine(store: Store, report: IngestReport, entry: QuarantineEntry | None) -> None:
    assert entry is not None
    store.corpus.quarantine_row(entry)
    report.quarantined.append(entry)


def _would_change(src: SourceText, opts: IngestOptions) -> str | None:
    """'before -> after' when these options' length/date filters disagree with a stored text."""
    old = reason_key(src.filter_reason) if src.status == "filtered" else "ok"
    if old not in CHEAP_REASONS | {"ok"}:
        return None  # duplicates: only `refilter` can re-decide them (order matters)
    new = reason_key(cheap_reason(src, opts))
    return f"{old} -> {new}" if new != old else None


@dataclass
class RefilterReport:
    before: Counter[str] = field(default_factory=Counter)  # texts per status/reason, before
    after: Counter[str] = field(default_factory=Counter)  # ... and after
    changes: Counter[str] = field(default_factory=Counter)  # "no_date -> ok": 10
    constructed: list[tuple[str, str]] = field(default_factory=list)  # (id, change) with a triplet
    hashed: int = 0  # texts hashed for the near-duplicate check (had no signature yet)
    dry_run: bool = False

    @property
    def changed(self) -> int:
        return sum(self.changes.values())


def refilter(store: Store, opts: IngestOptions | None = None, *, touch_constructed: bool = False,
             dry_run: bool = False, page: int = 1000,
             on_row: Callable[[], Any] | None = None) -> RefilterReport:
    """Re-apply the filters to every stored text, in ingest order, with `opts`.

    A filtered text whose reason no longer holds becomes `ok`; an `ok` text that now fails is
    filtered; duplicates are re-decided against the texts that are `ok` after this pass (and
    stored before them), so the result depends only on the texts, their order and `opts`:
    a second run with the same options changes nothing. Texts that already have a triplet are
    left as they are and listed in `constructed` unless `touch_constructed` (then they change
    and are still listed). Reasons set by other tools are kept. `dry_run` rolls the filter
    changes back (the index may still gain missing signatures).
    """
    from .pipeline import triplet_id

    opts = opts or IngestOptions()
    check_fields(opts.where, (s.meta for s in store.corpus.iter_sources(None)))
    report = RefilterReport(dry_run=dry_run)
    index = NearDupIndex(store, threshold=opts.near_dup_threshold, ngram=opts.shingle)
    index.prepare()  # index upkeep (a cache of signatures), done even for a dry run
    outer = store.transaction(commit=False) if dry_run else contextlib.nullcontext()
    with outer:
        last = 0
        while rows := store.corpus.source_page(last, page):
            last = rows[-1][0]
            with contextlib.nullcontext() if dry_run else store.transaction():
                _refilter_page(rows, store, opts, index, report, touch_constructed, triplet_id,
                               on_row)
    report.hashed = index.hashed
    if not dry_run:
        record_where(store, opts.where)
    return report


def _refilter_page(rows: list[tuple[int, SourceText]], store: Store, opts: IngestOptions,
                   index: NearDupIndex, report: RefilterReport, touch_constructed: bool,
                   triplet_id: Callable[[str], str], on_row: Callable[[], Any] | None) -> None:
    cheap = {rowid: cheap_reason(src, opts) for rowid, src in rows}
    need = [src for rowid, src in rows if cheap[rowid] is None]
    stored = store.corpus.minhash_of([s.id for s in need]) if need else {}
    index.load({s.hash: stored[s.id] for s in need if s.id in stored})
    todo = [s for s in need if not index.has_signature(s.hash)]
    index.compute([s.text for s in todo], [s.hash for s in todo])
    for rowid, src in rows:
        if on_row:
            on_row()
        old = reason_key(src.filter_reason) if src.status == "filtered" else "ok"
        report.before[old] += 1
        if old not in OUR_REASONS | {"ok"}:
            report.after[old] += 1
            continue
        reason, dup_of = cheap[rowid], None
        if reason is None and (dup := store.corpus.earlier_ok_with_hash(src.hash, rowid)):
            reason, dup_of = f"exact_duplicate of {dup}", dup
        if reason is None and (near := index.check(src.id, src.text, src.hash, rowid)):
            reason, dup_of = f"near_duplicate of {near[0]} (jaccard {near[1]:.2f})", near[0]
        new = reason_key(reason)
        if reason is None or new == "near_duplicate":
            index.add(src.id, src.hash)
        if (new, dup_of) == (old, src.duplicate_of):
            report.after[old] += 1
            continue
        change = f"{old} -> {new}" + (" (another original)" if new == old else "")
        if store.construct.has_triplet(triplet_id(src.id)):
            report.constructed.append((src.id, change))
            if not touch_constructed:
                report.after[old] += 1
                continue
        src.status = "filtered" if reason else "ok"
        src.filter_reason, src.duplicate_of = reason, dup_of
        store.corpus.update_source(src)
        report.changes[change] += 1
        report.after[new] += 1
    index.forget()
