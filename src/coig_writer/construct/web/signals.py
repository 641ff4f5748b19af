"""Engagement counts and publication dates a page states in its markup.

- JSON-LD (`<script type="application/ld+json">`, `@graph` included): `interactionStatistic`
  counters (LikeAction / VoteAction -> likes, CommentAction -> comments, ShareAction -> shares,
  ViewAction / ReadAction / WatchAction -> views), `commentCount`, `upvoteCount`, and
  `datePublished` / `dateCreated` / `uploadDate`.
- Microdata (`itemprop=...`, as Zhihu marks answers): upvoteCount, voteCount, commentCount,
  interactionCount, userInteractionCount, datePublished, dateCreated.
- Meta tags (Open Graph and the usual names): article:published_time, og:published_time,
  pubdate, publishdate, date, DC.date.issued, ...
Counts are numbers ("1.2万" = 12000, "3,456" = 3456); broken JSON-LD is ignored (it is common
and says nothing about the text).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from typing import Any

ACTIONS = {"likeaction": "likes", "voteaction": "likes", "agreeaction": "likes",
           "commentaction": "comments", "shareaction": "shares", "viewaction": "views",
           "readaction": "views", "watchaction": "views"}
COUNT_PROPS = {"commentcount": "comments", "upvotecount": "likes", "votecount": "likes",
               "likecount": "likes", "sharecount": "shares"}
DATE_PROPS = ("datepublished", "datecreated", "uploaddate")
META_DATES = ("article:published_time", "og:published_time", "og:article:published_time",
              "article:published", "pubdate", "publishdate", "publish_date", "publish-date",
              "date", "dc.date", "dc.date.issued", "dcterms.created", "dcterms.issued",
              "sailthru.date", "parsely-pub-date", "weibo:article:create_at", "datepublished")
_NUM = re.compile(r"(\d+(?:[.,]\d+)*)\s*([万萬亿億kKwW千]?)")
_SCALE = {"万": 10_000, "萬": 10_000, "w": 10_000, "W": 10_000, "亿": 100_000_000,
          "億": 100_000_000, "k": 1000, "K": 1000, "千": 1000, "": 1}
_DATE = re.compile(r"(\d{4})\s*(?:[-/.]|年)\s*(\d{1,2})\s*(?:[-/.]|月)\s*(\d{1,2})")


def parse_count(value: Any) -> int | None:
    """A count as an int: 1234, "1,234", "1.2万", "3k", "UserLikes:12"; None if no number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    if not isinstance(value, str):
        return None
    m = _NUM.search(value)
    if not m:
        return None
    digits, unit = m.group(1), m.group(2)
    number = float(digits.replace(",", "")) if unit or "." in digits.replace(",", "") \
        else int(digits.replace(",", "").replace(".", ""))
    return int(round(number * _SCALE[unit]))


def parse_day(value: Any, latest: dt.date | None = None) -> dt.date | None:
    """The first full year-month-day in `value` (ISO, 2023/3/5, 2023年3月5日), if plausible."""
    if not isinstance(value, str):
        return None
    m = _DATE.search(value)
    if not m:
        return None
    try:
        day = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None
    latest = latest or dt.date.today() + dt.timedelta(days=1)
    return day if dt.date(1990, 1, 1) <= day <= latest else None


def _objects(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, list):
        for x in node:
            yield from _objects(x)
    elif isinstance(node, dict):
        yield node
        for v in node.values():
            if isinstance(v, (list, dict)):
                yield from _objects(v)


def _type_name(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("@type") or value.get("@id") or ""
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value).rstrip("/").rsplit("/", 1)[-1].lower()


def json_ld(tree: Any) -> list[dict[str, Any]]:
    """Every object of the page's JSON-LD blocks (unparseable blocks are skipped)."""
    out: list[dict[str, Any]] = []
    for script in tree.xpath('//script[@type="application/ld+json"]'):
        try:
            data = json.loads(script.text or "", strict=False)
        except ValueError:
            continue
        out.extend(_objects(data))
    return out


def _add(counts: dict[str, int], field: str, value: Any) -> None:
    n = parse_count(value)
    if n is not None:
        counts[field] = max(n, counts.get(field, 0))


def markup_counts(tree: Any, objects: list[dict[str, Any]]) -> dict[str, int]:
    """likes / comments / shares / views the JSON-LD objects and microdata state."""
    counts: dict[str, int] = {}
    for obj in objects:
        stats = obj.get("interactionStatistic")
        for stat in stats if isinstance(stats, list) else [stats] if stats else []:
            if isinstance(stat, dict) and (field := ACTIONS.get(_type_name(stat.get("interactionType")))):
                _add(counts, field, stat.get("userInteractionCount"))
        for key, value in obj.items():
            if (field := COUNT_PROPS.get(str(key).lower())) is not None:
                _add(counts, field, value)
    for el in tree.xpath("//*[@itemprop]"):
        prop = (el.get("itemprop") or "").lower()
        field = COUNT_PROPS.get(prop) or ("likes" if prop in ("interactioncount",
                                                              "userinteractioncount") else None)
        if field:
            _add(counts, field, el.get("content") or el.text_content())
    return counts


def markup_date(tree: Any, objects: list[dict[str, Any]]) -> tuple[dt.date | None, str | None]:
    """(date, method): JSON-LD first, then microdata, then meta tags."""
    for prop in DATE_PROPS:
        for obj in objects:
            for key, value in obj.items():
                if str(key).lower() == prop and (day := parse_day(value)):
                    return day, "json-ld"
    for el in tree.xpath("//*[@itemprop]"):
        if (el.get("itemprop") or "").lower() in DATE_PROPS:
            if day := parse_day(el.get("content") or el.get("datetime") or el.text_content()):
                return day, "microdata"
    metas = {}
    for el in tree.xpath("//meta[@content]"):
        name = (el.get("property") or el.get("name") or el.get("itemprop") or "").lower()
        metas.setdefault(name, el.get("content"))
    for name in META_DATES:
        if (day := parse_day(metas.get(name))) is not None:
            return day, "meta"
    return None, None


def _name(value: Any) -> str | None:
    """A JSON-LD name: a string, {"name": ...}, or the first of a list."""
    if isinstance(value, list):
        names = [n for n in (_name(v) for v in value) if n]
        return ", ".join(names) or None
    if isinstance(value, dict):
        value = value.get("name")
    return value.strip() or None if isinstance(value, str) else None


def markup_meta(tree: Any, objects: list[dict[str, Any]]) -> dict[str, str | None]:
    """title, author and site as the page's markup states them: Open Graph and meta tags,
    JSON-LD (headline, author, publisher), then trafilatura's title (<title>, <h1>)."""
    metas: dict[str, str] = {}
    for el in tree.xpath("//meta[@content]"):
        name = (el.get("property") or el.get("name") or "").lower()
        metas.setdefault(name, (el.get("content") or "").strip())
    article = next((o for o in objects if o.get("headline") or o.get("author")), {})
    site_obj = next((o for o in objects if _type_name(o) == "website"), {})
    from trafilatura.metadata import extract_title  # <title> without the site's suffix, or <h1>

    title = (metas.get("og:title") or _name(article.get("headline"))
             or " ".join((extract_title(tree) or "").split()))
    author = (_name(article.get("author")) or metas.get("author") or metas.get("article:author")
              or metas.get("byl"))
    site = (metas.get("og:site_name") or _name(article.get("publisher")) or _name(site_obj)
            or metas.get("application-name"))
    return {"title": title or None, "author": author or None, "site": site or None}
