"""Human blind rankings: import them (the review app will write them directly)."""

from __future__ import annotations

from pathlib import Path

from ..readers import read_rows
from ..records import Judgment, QuarantineEntry
from ..store import Store


def import_human_rankings(store: Store, path: Path) -> tuple[int, list[QuarantineEntry]]:
    """Rows: {"prompt_id", "rater", "ranks": {model: rank}} (1 best, equal ranks tie) or
    {"prompt_id", "rater", "order": [best, ..., worst]}."""
    added, bad = 0, []
    for row in read_rows(path):
        try:
            if row.error or row.data is None:
                raise ValueError(row.error or "empty row")
            d = row.data
            ranks = d.get("ranks") or {m: float(i) for i, m in enumerate(d.get("order") or [], 1)}
            if len(ranks) < 2 or not d.get("prompt_id") or not d.get("rater"):
                raise ValueError("need prompt_id, rater and ranks (or order) of 2+ models")
            store.evaluation.put_judgment(Judgment(
                prompt_id=str(d["prompt_id"]), kind="rank", models=sorted(ranks),
                ranks={str(k): float(v) for k, v in ranks.items()}, source="human",
                judge=str(d["rater"])))
            added += 1
        except (ValueError, TypeError) as e:
            entry = QuarantineEntry(path=row.path, line=row.line, error=str(e), raw=row.raw)
            store.corpus.quarantine(entry)
            bad.append(entry)
    return added, bad
