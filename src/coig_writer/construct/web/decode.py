"""Page bytes as text: a byte-order mark, then the declared charset, then UTF-8 and GB18030.

Never a guess with replacement characters: a page that no candidate decodes whole raises
`CharsetError` (its record is quarantined). A declared single-byte charset (latin-1 and
friends decode any bytes) is tried after UTF-8, since servers often declare it for UTF-8 pages.
"""

from __future__ import annotations

import codecs
import re

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.I)
_SINGLE_BYTE = {"latin-1", "iso8859-1", "cp1252", "ascii", "iso8859-15"}
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


class CharsetError(ValueError):
    """Bytes that no candidate charset decodes."""


def declared_charset(data: bytes) -> str | None:
    """The charset a page's <meta> declares within its first 4 KB."""
    m = _META_CHARSET.search(data[:4096])
    return m.group(1).decode("ascii", "replace") if m else None


def _codec(name: str) -> str | None:
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        return None
    return "gb18030" if codec in ("gbk", "gb2312") else codec  # GB18030 is their superset


def decode_html(data: bytes, header_charset: str | None = None) -> tuple[str, str]:
    """(text, charset used); CharsetError naming every charset tried."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode("utf-8-sig" if name == "utf-8" else name), name
            except UnicodeDecodeError:
                break
    declared = header_charset or declared_charset(data)
    tried: list[str] = []
    names: list[str] = []
    if declared:
        codec = _codec(declared)
        if codec is None:
            tried.append(f"{declared} (unknown charset)")
        else:
            names.append(codec)
    if names and names[0] in _SINGLE_BYTE:
        names.insert(0, "utf-8")
    names += [n for n in ("utf-8", "gb18030") if n not in names]
    for name in names:
        try:
            return data.decode(name), name
        except UnicodeDecodeError as e:
            tried.append(f"{name} (bad byte at {e.start})")
    raise CharsetError("cannot decode the page: tried " + ", ".join(tried))
