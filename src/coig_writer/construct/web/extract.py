"""One HTML page -> a corpus row: main content (trafilatura), metadata, date, signals, language.

The main text is trafilatura's in precision mode: navigation, comment sections and footers are
dropped; paragraphs are lines, and a <br> inside a paragraph stays a line break (verse keeps
its lines). The row's fields:

- text; title, author, site as the markup states them (Open Graph and meta tags, JSON-LD,
  <title>; `signals.markup_meta`: trafilatura's own metadata pass guesses bylines too, but
  costs about as much as the content extraction on long pages); url (the WARC record's, else
  `<link rel=canonical>`, else `og:url`); host;
- date (YYYY-MM-DD) with date_method: json-ld, microdata or meta (markup read here), htmldate
  (htmldate's fast search: URL, <time>, markup, timestamps), or text (the first full
  year-month-day in the visible text, 2023年3月5日 included). A bare year (a copyright line) is
  never taken for a date;
- lang (py3langid on the main text);
- likes / comments / shares / views from JSON-LD and microdata, and any field the user's
  signals map (`sites.py`) reads.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .script import detect_language
from .signals import json_ld, markup_counts, markup_date, markup_meta, parse_day
from .sites import SiteSignals

# the fields a web row may carry besides text/title/author/url/date (for --where checks)
WEB_FIELDS = ("site", "host", "date_method", "lang", "likes", "comments", "shares", "views",
              "warc_date", "charset")
_SCRIPTS = re.compile(r"<(script|style|noscript)\b.*?</\1\s*>", re.S | re.I)
_TAGS = re.compile(r"<[^>]+>")


@dataclass
class ExtractOptions:
    """How pages are read (picklable: Ray workers get a copy)."""

    signals: SiteSignals | None = None
    max_bytes: int = 16 << 20  # larger pages / WARC payloads are filtered (too_large)
    favor_precision: bool = True
    fast: bool = False  # trafilatura without its fallback extractors (readability, jusText)


@dataclass
class Extracted:
    data: dict[str, Any]
    reason: str | None = None  # no_main_content: the page has no text worth a record


def _canonical(tree: Any) -> str | None:
    for xp in ('//link[@rel="canonical"]/@href', '//meta[@property="og:url"]/@content'):
        if found := tree.xpath(xp):
            return str(found[0]).strip() or None
    return None


def _text_date(html: str) -> dt.date | None:
    return parse_day(_TAGS.sub(" ", _SCRIPTS.sub(" ", html)))


def extract_page(html: str, url: str | None = None, opts: ExtractOptions | None = None) -> Extracted:
    """The row for one page (a `reason` instead of text when there is no main content)."""
    from htmldate import find_date
    from trafilatura import bare_extraction
    from trafilatura.utils import load_html

    opts = opts or ExtractOptions()
    tree = load_html(html)
    if tree is None:
        return Extracted({"url": url}, "no_main_content: not parseable as HTML")
    url = url or _canonical(tree)
    host = (urlsplit(url).hostname or None) if url else None
    objects = json_ld(tree)
    data: dict[str, Any] = {"url": url, "host": host}
    data.update(markup_counts(tree, objects))
    if opts.signals:
        data.update(opts.signals.read(tree, host))
    data.update(markup_meta(tree, objects))
    data["site"] = data["site"] or host
    day, method = markup_date(tree, objects)
    if day is None and (found := find_date(tree, extensive_search=False, original_date=True,
                                           url=url, max_date=dt.date.today().isoformat())):
        day, method = parse_day(found), "htmldate"
    if day is None and (day := _text_date(html)) is not None:
        method = "text"
    doc = bare_extraction(tree, url=url, include_comments=False,
                          favor_precision=opts.favor_precision, fast=opts.fast)
    data.update(date=day.isoformat() if day else None, date_method=method)
    text = (doc.text or "").strip() if doc is not None else ""
    if not text:
        return Extracted(data, "no_main_content: the extractor found no main text")
    data["text"] = text
    data["lang"] = detect_language(text)
    return Extracted(data)
