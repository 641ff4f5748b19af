"""Export and import triplets as JSONL or Parquet, compatible with the released COIG-Writer
fields (`id`, `query`, `thought`, `answer`); `--full` adds provenance, scores and status."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..genres import load_taxonomy
from ..readers import BadRecord, read_rows, validate
from ..records import QuarantineEntry, Triplet
from ..store import Store

RELEASE_FIELDS = ("id", "query", "thought", "answer")
FORMATS = ("jsonl", "parquet")


def triplet_row(t: Triplet, full: bool) -> dict[str, Any]:
    row: dict[str, Any] = {k: getattr(t, k) for k in RELEASE_FIELDS}
    row["category"], row["genre"] = t.category, t.genre
    if full:
        data = json.loads(t.model_dump_json())
        for k in RELEASE_FIELDS:
            data.pop(k)
        row.update({k: v for k, v in data.items() if k not in row})
    return row


def write_rows(rows: Iterable[dict[str, Any]], path: Path) -> int:
    """Write rows as JSONL or Parquet (by suffix); returns the count. Writes atomically."""
    rows = list(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        flat = [{k: json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v
                 for k, v in r.items()} for r in rows]
        pq.write_table(pa.Table.from_pylist(flat), tmp)
    elif path.suffix == ".jsonl":
        with tmp.open("w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    else:
        raise ValueError(f"{path}: choose a .jsonl or .parquet file name")
    tmp.replace(path)
    return len(rows)


def export_triplets(store: Store, path: Path, status: str | None = "accepted",
                    full: bool = False) -> int:
    return write_rows((triplet_row(t, full) for t in store.construct.iter_triplets(status)), path)


def iter_triplet_rows(path: Path) -> Iterator[tuple[str, int | None, Triplet | None, str, str]]:
    """Yield (path, line, triplet or None, raw, error) for a released-format file; a row with
    a wrong-typed field comes back with the field named, never as an exception."""
    tax = load_taxonomy()
    for row in read_rows(path):
        if row.error or row.data is None:
            yield row.path, row.line, None, row.raw, row.error or "empty row"
            continue
        try:
            yield row.path, row.line, _triplet(row.data, tax), row.raw, ""
        except BadRecord as e:
            yield row.path, row.line, None, row.raw, str(e)


def _triplet(data: dict[str, Any], tax: Any) -> Triplet:
    d = dict(data)
    for k in ("scores", "screen", "validation", "provenance", "templates", "reasons",
              "expected_scores", "score_mass", "score_confidence", "checks"):
        if isinstance(d.get(k), str):  # parquet exports keep nested values as JSON text
            try:
                d[k] = json.loads(d[k])
            except ValueError:
                raise BadRecord(f"field {k!r}: not a JSON value (got {d[k][:60]!r})") from None
    missing = [k for k in RELEASE_FIELDS if d.get(k) in (None, "")]
    if missing:
        raise BadRecord(f"missing fields {missing}")
    if "query_type" in d and not d.get("category"):
        d["category"] = tax.resolve(str(d["query_type"]))[0] or str(d["query_type"])
    if not isinstance(d["id"], (str, int)):
        raise BadRecord(f"field 'id': expected text or a number, got {type(d['id']).__name__}")
    d["id"] = str(d["id"])
    d.setdefault("status", "accepted")
    prov = d.get("provenance") if isinstance(d.get("provenance"), dict) else {}
    for k in ("title", "author", "source_url", "license"):  # flat files name them at the top
        if isinstance(d.get(k), str) and not prov.get(k):
            prov = {**prov, k: d[k]}
    if prov:
        d["provenance"] = prov
    return validate(Triplet, d)


def import_triplets(store: Store, path: Path) -> tuple[int, list[QuarantineEntry]]:
    """Load triplets (e.g. the released dataset) into the store; bad rows are quarantined."""
    added, bad = 0, []
    for p, line, trip, raw, err in iter_triplet_rows(path):
        if trip is None:
            entry = QuarantineEntry(path=p, line=line, error=err, raw=raw)
            store.corpus.quarantine(entry)
            bad.append(entry)
        else:
            store.construct.put_triplet(trip)
            added += 1
    return added, bad
