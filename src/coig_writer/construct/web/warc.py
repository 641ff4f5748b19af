"""Streaming WARC reading with fastwarc: one record at a time, each with its byte offset.

- Only `response` records are pages; other record types (warcinfo, request, metadata, ...) are
  passed over. A response that is not HTML, not a 2xx answer or larger than `max_bytes` comes
  back with `skip` (a filter reason); a broken one with `error` (it is quarantined).
- A broken record never stops the file: after a decompression or parse error the reader
  resynchronises at the next record boundary (the next gzip member, or the next `WARC/1.`
  header, that really starts a record) and reports the unreadable stretch by its offset.
- A payload shorter than its Content-Length (a truncated file) is an error, never a short page.
- `start`/`end` read one byte range of the file: the records that *start* in [start, end),
  from the first boundary at or after `start`. Consecutive ranges read every record exactly
  once, so Ray workers can split a large file without reading it first.
- A .warc.gz that is not compressed record by record has no boundaries to seek to: it is read
  through a decompressing stream, offsets are positions in the decompressed data, and a
  split of such a file (after the first record) is refused with an error.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

HTML_TYPES = {"text/html", "application/xhtml+xml"}
GZIP_MAGIC = b"\x1f\x8b\x08"
WARC_MAGIC = b"WARC/1."
_SCAN = 1 << 20


@dataclass
class WarcItem:
    """One response record: its payload, or why it is skipped (`skip`) or broken (`error`)."""

    offset: int
    url: str | None = None
    warc_date: str | None = None
    content_type: str | None = None
    charset: str | None = None
    payload: bytes | None = None
    skip: str | None = None
    error: str | None = None


class NotPerRecord(Exception):
    """A .warc.gz whose gzip members hold several records."""


def is_gzip(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(2) == GZIP_MAGIC[:2]


def _starts_record(f: BinaryIO, pos: int, gz: bool) -> bool:
    """Whether a WARC record really begins at `pos` (gzip: the member decompresses to one)."""
    f.seek(pos)
    head = f.read(4096 if gz else len(WARC_MAGIC))
    if not gz:
        return head == WARC_MAGIC
    if not head.startswith(GZIP_MAGIC):
        return False
    try:
        return zlib.decompressobj(wbits=31).decompress(head, 16).startswith(WARC_MAGIC)
    except zlib.error:
        return False


def candidates(f: BinaryIO, pos: int, gz: bool, stop: int | None = None) -> Iterator[int]:
    """Offsets >= pos where a record may begin (a gzip header, or `WARC/1.` after a newline)."""
    magic = GZIP_MAGIC if gz else WARC_MAGIC
    while stop is None or pos < stop:
        f.seek(pos)
        chunk = f.read(_SCAN + len(magic))
        if not chunk:
            return
        i = chunk.find(magic)
        while i >= 0 and i < _SCAN:
            at = pos + i
            if gz or at == 0 or _after_newline(f, at):
                if stop is not None and at >= stop:
                    return
                yield at
            i = chunk.find(magic, i + 1)
        if len(chunk) <= _SCAN:
            return
        pos += _SCAN


def _after_newline(f: BinaryIO, at: int) -> bool:
    f.seek(at - 1)
    return f.read(1) == b"\n"


def next_boundary(f: BinaryIO, pos: int, gz: bool) -> int | None:
    """The first offset >= pos where a readable record begins."""
    for at in candidates(f, pos, gz):
        if _starts_record(f, at, gz):
            return at
    return None


def _item(rec: Any, offset: int, max_bytes: int) -> WarcItem:
    """The page of one response record (its payload read here), or why there is none."""
    url = rec.headers.get("WARC-Target-URI")
    item = WarcItem(offset, url=url, warc_date=rec.headers.get("WARC-Date"))
    http = rec.http_headers
    if http is None or http.status_code is None:
        item.error = "response record without readable HTTP headers (truncated?)"
        return item
    ctype = (rec.http_content_type or "").split(";")[0].strip().lower()
    item.content_type, item.charset = ctype or None, rec.http_charset
    if not 200 <= http.status_code < 300:
        item.skip = f"http_status: {http.status_code}"
    elif ctype not in HTML_TYPES:
        item.skip = f"not_html: {ctype or 'no content type'}"
    elif rec.content_length > max_bytes:
        item.skip = f"too_large: {rec.content_length} > {max_bytes} bytes"
    if item.skip:
        return item
    body = rec.reader.read()
    if len(body) < rec.content_length:
        item.error = f"truncated record: {len(body)} of {rec.content_length} payload bytes"
        return item
    try:
        item.payload = decode_transfer(body, http.get("Transfer-Encoding"),
                                       http.get("Content-Encoding"))
    except ValueError as e:
        item.error = str(e)
    return item


def decode_transfer(body: bytes, transfer: str | None, encoding: str | None) -> bytes:
    """The payload without chunked transfer coding and gzip/deflate/br content coding."""
    if transfer and "chunked" in transfer.lower():
        body = _unchunk(body)
    enc = (encoding or "").strip().lower()
    try:
        if enc in ("gzip", "x-gzip"):
            return gzip.decompress(body)
        if enc == "deflate":
            return zlib.decompress(body, -zlib.MAX_WBITS if body[:1] != b"\x78" else zlib.MAX_WBITS)
        if enc == "br":
            import brotli  # type: ignore[import-not-found]

            return brotli.decompress(body)
    except ImportError:
        raise ValueError("brotli-encoded payload: pip install brotli to read it") from None
    except Exception as e:  # zlib.error, EOFError, brotli.error
        raise ValueError(f"cannot decode the {enc} payload: {e}") from None
    return body


def _unchunk(body: bytes) -> bytes:
    out, pos = bytearray(), 0
    while True:
        eol = body.find(b"\r\n", pos)
        if eol < 0:
            raise ValueError("broken chunked payload: no chunk size line")
        try:
            n = int(body[pos:eol].split(b";")[0], 16)
        except ValueError:
            raise ValueError(f"broken chunked payload at byte {pos}") from None
        if n == 0:
            return bytes(out)
        out += body[eol + 2:eol + 2 + n]
        pos = eol + 4 + n


@dataclass
class _Run:
    last: int | None = None  # offset of the last record read
    count: int = 0  # records read (of every type)
    failed: str | None = None
    done: bool = False  # reached `end`: the rest belongs to the next range


def _read_from(f: BinaryIO, pos: int, end: int | None, max_bytes: int, gz: bool, run: _Run,
               peek: BinaryIO) -> Iterator[WarcItem]:
    from fastwarc import ArchiveIterator, WarcRecordType

    f.seek(pos)
    try:
        for rec in ArchiveIterator(f, parse_http=True, auto_decode="none"):
            off = rec.stream_pos
            if end is not None and off >= end:
                run.done = True
                return
            if run.last is not None and (off <= run.last or (gz and not _member_at(peek, off))):
                raise NotPerRecord()
            run.last = off
            run.count += 1
            if rec.record_type != WarcRecordType.response:
                continue
            try:
                yield _item(rec, off, max_bytes)
            except OSError as e:  # the payload itself is undecompressable
                yield WarcItem(off, error=f"unreadable record payload: {e}")
                return
    except (OSError, ValueError) as e:
        run.failed = str(e) or type(e).__name__


def _member_at(peek: BinaryIO, off: int) -> bool:
    peek.seek(off)
    return peek.read(3) == GZIP_MAGIC


def iter_warc(path: Path, start: int = 0, end: int | None = None,
              max_bytes: int = 16 << 20) -> Iterator[WarcItem]:
    """The response records that start in [start, end) of the file (see the module doc)."""
    gz, size = is_gzip(path), path.stat().st_size
    with path.open("rb") as f, path.open("rb") as peek:
        pos: int | None = start if start == 0 else next_boundary(f, start, gz)
        while pos is not None and (end is None or pos < end):
            run = _Run()
            try:
                yield from _read_from(f, pos, end, max_bytes, gz, run, peek)
            except NotPerRecord:
                yield from _decompressed(path, run.count, pos, max_bytes)
                return
            if run.done:
                return
            if run.last is None:  # nothing readable where a record should begin
                yield WarcItem(pos, error=f"unreadable WARC record: {run.failed or 'truncated'}")
                pos = next_boundary(f, pos + 1, gz)
                continue
            after = record_end(f, run.last, gz)
            if run.failed:
                if after is not None and end is not None and after >= end \
                        and _starts_record(f, after, gz):
                    return  # the next range begins there and reports it
                yield WarcItem(after or run.last + 1, error="unreadable WARC data after the "
                                                            f"record at {run.last}: {run.failed}")
                pos = next_boundary(f, (after or run.last) + 1, gz)
            elif after is not None and after < size:  # the reader stopped before the end
                if _starts_record(f, after, gz):
                    pos = after
                    continue
                yield WarcItem(after, error=f"unreadable data after the record at {run.last} "
                                            f"({size - after} bytes; a truncated record?)")
                pos = next_boundary(f, after + 1, gz)
            else:
                pos = None


def record_end(f: BinaryIO, pos: int, gz: bool) -> int | None:
    """Where the record at `pos` ends in the file (None: it does not end: truncated)."""
    f.seek(pos)
    if not gz:
        head = f.read(65536)
        cut = head.find(b"\r\n\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in head[:cut].split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), None)
        return None if cut < 0 or length is None else pos + cut + 4 + length + 4
    d, n = zlib.decompressobj(wbits=31), 0
    while not d.eof:
        chunk = f.read(1 << 16)
        if not chunk:
            return None
        try:
            d.decompress(chunk)
        except zlib.error:
            return None
        n += len(chunk)
    return pos + n - len(d.unused_data)


def _decompressed(path: Path, skip: int, pos: int, max_bytes: int) -> Iterator[WarcItem]:
    """The records after the first `skip` of a gzip file not compressed record by record."""
    from fastwarc import ArchiveIterator, WarcRecordType

    if pos != 0:
        yield WarcItem(pos, error="this .warc.gz is not compressed record by record, so it "
                                  "cannot be read in parts; read it whole (one worker)")
        return
    off = 0
    with gzip.open(path, "rb") as g:
        try:
            for i, rec in enumerate(ArchiveIterator(g, parse_http=True, stream_detect=False)):
                off = rec.stream_pos
                if i < skip or rec.record_type != WarcRecordType.response:
                    continue  # read already
                yield _item(rec, off, max_bytes)
        except (OSError, EOFError, ValueError) as e:
            yield WarcItem(off + 1, error=f"unreadable data after decompressed offset {off}: {e}")


def splittable(path: Path) -> bool:
    """Whether the file can be read in byte ranges (plain WARC, or gzip record by record)."""
    from fastwarc import ArchiveIterator

    if not is_gzip(path):
        return True
    try:
        it = iter(ArchiveIterator(str(path), parse_http=False))
        next(it)
        second = next(it).stream_pos
    except (StopIteration, OSError, ValueError):
        return False
    with path.open("rb") as f:
        return _member_at(f, second) and second < os.path.getsize(path)
