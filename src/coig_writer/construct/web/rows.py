"""HTML files and WARC files as rows for the one row reader (`readers.read_rows`).

A row is a page's fields (see `extract.py`), a `reason` when the record is no page to keep
(not HTML, no main content, ...: stored as filtered), or an `error` (quarantined). HTML files
are one row each (line 1); WARC rows carry the record's byte offset as their line, so an
origin or a quarantine entry reads `crawl.warc.gz:18342`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .decode import CharsetError, decode_html
from .extract import ExtractOptions, extract_page

HTML_SUFFIXES = (".html", ".htm")
WARC_SUFFIXES = (".warc", ".warc.gz")
RAW_CHARS = 2000  # of the page kept with a quarantined row


@dataclass
class WebRow:
    line: int
    data: dict[str, Any] | None
    raw: str
    error: str | None = None
    reason: str | None = None


def is_html(path: Path) -> bool:
    return path.name.lower().endswith(HTML_SUFFIXES)


def is_warc(path: Path) -> bool:
    return path.name.lower().endswith(WARC_SUFFIXES)


def page_row(line: int, payload: bytes, url: str | None, charset: str | None,
             opts: ExtractOptions, extra: dict[str, Any] | None = None) -> WebRow:
    """One page's bytes -> a row (an error for bytes that no charset decodes)."""
    preview = payload[:RAW_CHARS].decode("utf-8", "replace")
    if len(payload) > opts.max_bytes:
        return WebRow(line, {"url": url, **(extra or {})}, preview,
                      reason=f"too_large: {len(payload)} > {opts.max_bytes} bytes")
    try:
        html, used = decode_html(payload, charset)
    except CharsetError as e:
        return WebRow(line, None, preview, error=f"{e} (declared: {charset or 'none'})")
    try:
        page = extract_page(html, url, opts)
    except (ValueError, TypeError, RecursionError) as e:  # lxml / trafilatura on odd markup
        return WebRow(line, None, html[:RAW_CHARS], error=f"cannot extract the page: {e}")
    data = {**page.data, **(extra or {}), "charset": used}
    return WebRow(line, data, html[:RAW_CHARS], reason=page.reason)


def html_rows(path: Path, opts: ExtractOptions | None = None) -> Iterator[WebRow]:
    opts = opts or ExtractOptions()
    try:
        size = path.stat().st_size
        if size > opts.max_bytes:  # not read at all
            yield WebRow(1, {}, "", reason=f"too_large: {size} > {opts.max_bytes} bytes")
            return
        payload = path.read_bytes()
    except OSError as e:
        yield WebRow(1, None, "", error=f"cannot read: {e.strerror or e}")
        return
    yield page_row(1, payload, None, None, opts)


def warc_rows(path: Path, opts: ExtractOptions | None = None, start: int = 0,
              end: int | None = None) -> Iterator[WebRow]:
    """The response records of a WARC file (or of the byte range [start, end) of it)."""
    from .warc import iter_warc

    opts = opts or ExtractOptions()
    for item in iter_warc(path, start, end, max_bytes=opts.max_bytes):
        extra = {k: v for k, v in (("warc_date", item.warc_date),
                                   ("content_type", item.content_type)) if v}
        if item.error:
            yield WebRow(item.offset, None, f"WARC record at byte {item.offset}: {item.url or ''}",
                         error=item.error)
        elif item.skip or item.payload is None:
            yield WebRow(item.offset, {"url": item.url, **extra}, "", reason=item.skip)
        else:
            yield page_row(item.offset, item.payload, item.url, item.charset, opts, extra)
