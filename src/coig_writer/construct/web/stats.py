"""What each filter would remove (`construct ingest --stats`), without writing anything.

Every text is checked against every filter on its own (not only the first it fails), so the
table shows what a filter removes by itself, what it alone removes (no other filter would),
and what ingest would record (the first failing filter, in ingest's order). The pre-filters
are shown with the thresholds given (or the defaults when they are off), so the table also
answers "what would --prefilter remove here". Near duplicates need the store's index and
are not counted; exact duplicates within the input are.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...readers import check_input, iter_files, read_rows
from ..filters import date_reason, length_reason, reason_key
from ..ingest import IngestOptions, lang_reason, parse_row
from ..where import where_reason
from .quality import FILTERS, PrefilterConfig, failures


@dataclass
class FilterStats:
    read: int = 0
    quarantined: int = 0
    texts: int = 0  # rows with a text that reached the filters
    by_reader: Counter[str] = field(default_factory=Counter)  # not_html, no_main_content, ...
    removes: Counter[str] = field(default_factory=Counter)  # filter -> texts it fails
    alone: Counter[str] = field(default_factory=Counter)  # ... that no other filter fails
    first: Counter[str] = field(default_factory=Counter)  # ingest's recorded reason
    exact_duplicates: int = 0
    kept: int = 0  # texts no filter removes (before near-duplicate checks)
    thresholds: dict[str, str] = field(default_factory=dict)
    prefilters_on: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"read": self.read, "quarantined": self.quarantined, "texts": self.texts,
                "by_reader": dict(self.by_reader), "removes": dict(self.removes),
                "alone": dict(self.alone), "first": dict(self.first),
                "exact_duplicates": self.exact_duplicates, "kept": self.kept,
                "thresholds": self.thresholds, "prefilters_on": self.prefilters_on}


def _thresholds(opts: IngestOptions, cfg: PrefilterConfig) -> dict[str, str]:
    out = {"too_short": f"< {opts.min_chars} chars", "too_long": f"> {opts.max_chars} chars"}
    if opts.after or opts.require_date:
        out["no_date"] = "no date"
    if opts.after:
        out["before_cutoff"] = f"<= {opts.after}"
    if opts.where:
        out["where"] = " and ".join(map(str, opts.where))
    if opts.langs:
        out["other_language"] = f"not {','.join(opts.langs)}"
    for name, key in FILTERS:
        if (v := getattr(cfg, key)) is not None:
            out[name] = f"{'<' if key.startswith('min_') else '>'} {v:g}"
    return out


def filter_stats(paths: list[Path], opts: IngestOptions,
                 on_row: Callable[[], Any] | None = None) -> FilterStats:
    """Read every row of `paths` as ingest would and count what each filter removes."""
    for p in paths:
        check_input(p, folders=True)
    cfg = opts.prefilter or PrefilterConfig()
    st = FilterStats(thresholds=_thresholds(opts, cfg), prefilters_on=opts.prefilter is not None)
    seen: set[str] = set()
    for path in iter_files(paths):
        for row in read_rows(path, opts.web):
            st.read += 1
            if on_row:
                on_row()
            p = parse_row(row, opts)
            if p.src is None:
                st.quarantined += 1
                continue
            if p.reason:
                st.by_reader[reason_key(p.reason)] += 1
                continue
            st.texts += 1
            src = p.src
            found = [r for r in (length_reason(src.text, opts.min_chars, opts.max_chars, len(p.norm)),
                                 date_reason(src.provenance.date, opts.after, opts.require_date),
                                 where_reason(src.meta, opts.where), lang_reason(src, opts.langs),
                                 *failures(src.text, cfg)) if r]
            names = [reason_key(r) for r in found]
            for name in names:
                st.removes[name] += 1
            if len(names) == 1:
                st.alone[names[0]] += 1
            recorded = [n for n in names if opts.prefilter is not None or n not in cfg.names]
            if recorded:
                st.first[recorded[0]] += 1
            elif p.digest in seen:
                st.exact_duplicates += 1
            else:
                seen.add(p.digest)
                st.kept += 1
    return st
