"""Dataset statistics per category and genre, like the paper's tables."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from ..genres import load_taxonomy
from ..records import Triplet

FIELDS = ("query", "thought", "answer")


@dataclass
class LengthStats:
    min: int
    mean: float
    max: int

    @classmethod
    def of(cls, values: list[int]) -> LengthStats:
        return cls(min(values), sum(values) / len(values), max(values)) if values else cls(0, 0, 0)


@dataclass
class GroupStats:
    name: str
    count: int
    share: float
    lengths: dict[str, LengthStats]


def group_stats(triplets: Iterable[Triplet], by: str = "category", lang: str = "en"
                ) -> tuple[list[GroupStats], GroupStats]:
    """Per-group count, share and min/mean/max character lengths of query, thought, answer.
    `by` is `category` or `genre`; returns (rows sorted by count, overall row)."""
    tax = load_taxonomy()
    names = {c.key: getattr(c, lang) for c in tax.categories}
    names.update({g.key: f"{getattr(tax.category(g.category), lang)} / {getattr(g, lang)}"
                  for g in tax.genres})
    groups: dict[str, list[Triplet]] = defaultdict(list)
    items = list(triplets)
    for t in items:
        groups[getattr(t, by) or "(unknown)"].append(t)

    def make(name: str, ts: list[Triplet]) -> GroupStats:
        return GroupStats(name, len(ts), len(ts) / len(items) if items else 0.0,
                          {f: LengthStats.of([len(getattr(t, f)) for t in ts]) for f in FIELDS})

    rows = [make(names.get(k, k), ts) for k, ts in groups.items()]
    rows.sort(key=lambda r: (-r.count, r.name))
    return rows, make("Total" if lang == "en" else "合计", items)
