"""`construct ingest --executor ray`: the expensive part on Ray workers, the decisions on the driver.

- The driver cuts the input into shards: WARC files into byte ranges of `shard_mb` (a worker
  reads the records that start in its range, see `warc.py`; a .warc.gz not compressed record
  by record stays whole), other files in groups of `files_per_shard`. No file is read twice.
- A worker reads its shard through the one row reader, extracts the pages, converts the
  script, normalises and hashes each text and computes the MinHash signature of every text
  that passes the cheap filters: everything that needs no store.
- The driver takes the shards' rows in input order (shards that finish early wait in memory,
  at most `2 x workers` of them) and stores them exactly as a local ingest does: the exact
  and near-duplicate decisions run against the one global index in the project store (the
  workers' signatures become band keys there), so Ray ingest stores the same texts with the
  same ids, reasons and origins as a local ingest of the same files. The project store has
  one writer, the driver; a killed run is simply run again (ingest is idempotent).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...readers import iter_files, read_rows, web_rows
from ...store import Store
from ..filters import MinHasher
from ..ingest import (
    IngestOptions,
    IngestReport,
    ParsedRow,
    cheap_reason,
    parse_row,
    start_ingest,
    store_batch,
)
from .rows import is_warc, warc_rows
from .warc import splittable


@dataclass(frozen=True)
class Part:
    """A whole file (end None, start 0) or the records starting in [start, end) of a WARC."""

    path: str
    start: int = 0
    end: int | None = None


def plan_shards(paths: list[Path], shard_mb: float = 32, files_per_shard: int = 64
                ) -> Iterator[list[Part]]:
    """The shards of the input, in input order."""
    size = max(1, int(shard_mb * 2 ** 20))
    group: list[Part] = []
    for f in iter_files(paths):
        if is_warc(f) and f.stat().st_size > size and splittable(f):
            if group:
                yield group
                group = []
            total = f.stat().st_size
            for start in range(0, total, size):
                yield [Part(str(f), start, start + size if start + size < total else None)]
            continue
        group.append(Part(str(f)))
        if len(group) >= files_per_shard or is_warc(f):
            yield group
            group = []
    if group:
        yield group


def prepare_shard(parts: list[Part], opts: IngestOptions) -> list[ParsedRow]:
    """On a worker: every row of the shard parsed, with signatures for the texts that pass the
    cheap filters."""
    out: list[ParsedRow] = []
    for part in parts:
        path = Path(part.path)
        if part.start or part.end is not None:
            rows = web_rows(path, warc_rows(path, opts.web, part.start, part.end))
        else:
            rows = read_rows(path, opts.web)
        out.extend(parse_row(row, opts) for row in rows)
    todo = [p for p in out if p.src is not None and p.reason is None
            and cheap_reason(p.src, opts, p.norm) is None]
    if todo:
        sigs = MinHasher(ngram=opts.shingle).signatures([p.norm for p in todo], normalized=True)
        for p, sig in zip(todo, sigs, strict=True):
            p.sig = sig.tobytes()
    return out


def ingest_ray(paths: list[Path], store: Store, opts: IngestOptions, *, workers: int = 2,
               address: str | None = None, shard_mb: float = 32,
               on_row: Callable[[], Any] | None = None) -> IngestReport:
    """Ingest `paths` with the page work on Ray (a local instance of `workers` CPUs unless
    Ray is initialised already or `address` names a cluster)."""
    from ...executors.ray_executor import check_writable_dir, init_ray

    ray = _ray()
    index, report = start_ingest(paths, store, opts)
    state = Path(f"{store.path}.shards")
    started = False
    if not ray.is_initialized():
        check_writable_dir(state, "Ray state folder")
        init_ray(address, workers, state)
        started = True
    remote = ray.remote(num_cpus=1, max_retries=3)(prepare_shard)
    opts_ref = ray.put(opts)
    hashed = 0
    try:
        pending: list[Any] = []
        shards = plan_shards(paths, shard_mb)
        for parts in shards:
            pending.append(remote.remote(parts, opts_ref))
            while len(pending) >= 2 * workers:
                hashed += _store_next(ray, pending, store, opts, index, report, on_row)
        while pending:
            hashed += _store_next(ray, pending, store, opts, index, report, on_row)
    finally:
        if started:
            from ...executors.ray_local import stop_local

            stop_local(ray, state)
    report.hashed = hashed + index.hashed - report.backfilled
    return report


def _store_next(ray: Any, pending: list[Any], store: Store, opts: IngestOptions, index: Any,
                report: IngestReport, on_row: Callable[[], Any] | None) -> int:
    """Wait for the oldest shard (order is what makes Ray == local) and store its rows."""
    rows: list[ParsedRow] = ray.get(pending.pop(0))
    step = max(1, opts.batch_size)
    for i in range(0, len(rows), step):
        store_batch(rows[i:i + step], store, opts, index, report, on_row)
    return sum(p.sig is not None for p in rows)


def _ray() -> Any:
    from ...executors.ray_executor import RayUnavailable

    try:
        import ray
    except ImportError:
        raise RayUnavailable("--executor ray needs Ray: pip install 'coig-writer[ray]'") from None
    return ray
