"""`construct ingest`, `refilter`, `quarantine` and `status`: the corpus and the store's counts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from ...readers import InputError, check_input
from ...store import DEFAULT_DB, Store
from ..common import (
    console,
    fail,
    print_quarantined,
    progress_bar,
    read_store,
    warn,
)
from ..options import DbOpt, ExecutorOpt, JsonOpt, RayAddressOpt, WorkersOpt
from ..summaries import print_json, print_status
from . import construct_app
from .options import (
    AfterOpt,
    KeepLangOpt,
    MaxCharsOpt,
    MinCharsOpt,
    NearDupOpt,
    PrefilterConfigOpt,
    PrefilterOpt,
    RequireDateOpt,
    WhereOpt,
)


@construct_app.command("ingest")
def ingest_cmd(
    paths: Annotated[list[Path], typer.Argument(
        help="Files or folders (.txt .md .jsonl .json .parquet .html .htm .warc .warc.gz).")],
    db: DbOpt = Path(DEFAULT_DB),
    min_chars: MinCharsOpt = 12,
    max_chars: MaxCharsOpt = 50_000,
    after: AfterOpt = None,
    require_date: RequireDateOpt = False,
    where: WhereOpt = None,
    near_dup: NearDupOpt = 0.8,
    license: str | None = typer.Option(None, help="License for rows that name none."),
    batch_size: Annotated[int, typer.Option(help="Rows per transaction (a kill -9 loses at most "
                                                 "the open batch; a rerun redoes it).")] = 1000,
    to_simplified: Annotated[bool, typer.Option(
        help="Convert traditional-script texts to simplified (opencc) before dedup; the "
             "original is kept in meta.original_text.")] = False,
    lang: KeepLangOpt = None,
    prefilter: PrefilterOpt = False,
    prefilter_config: PrefilterConfigOpt = None,
    signals: Annotated[Path | None, typer.Option(
        help="YAML map of CSS selectors per site for fields such as likes or featured.")] = None,
    fast_extract: Annotated[bool, typer.Option(
        help="Skip trafilatura's fallback extractors (readability, jusText): about 30% less "
             "CPU per page; the fallbacks rescue pages its main extractor misreads.")] = False,
    stats: Annotated[bool, typer.Option(
        help="Write nothing: print what each filter would remove.")] = False,
    executor: ExecutorOpt = "local",
    workers: WorkersOpt = 2,
    ray_address: RayAddressOpt = None,
    shard_mb: Annotated[float, typer.Option(
        help="Bytes of WARC per Ray task, in MiB (--executor ray).")] = 32,
    as_json: JsonOpt = False,
) -> None:
    """Read a corpus into the store, with dedup and filters; bad rows are quarantined.

    HTML pages and WARC files are read for their main content (trafilatura) with title, URL,
    date and its method, language and engagement counts (likes, comments) as metadata.
    Texts already stored keep their status; when these options would change some of them, the
    count is reported: re-apply them with `coig-writer construct refilter`.

    Example: coig-writer construct ingest saved-pages/ crawl.warc.gz --to-simplified --lang zh
    --after 2022-10-31 --where 'likes>=5000' --prefilter
    """
    from ...construct.ingest import IngestOptions, ingest
    from ...construct.where import WhereError, parse_conditions

    try:
        cutoff = dt.date.fromisoformat(after) if after else None
    except ValueError:
        raise fail(f"--after must be YYYY-MM-DD, got {after!r}") from None
    try:
        conds = parse_conditions(where or [])
    except WhereError as e:
        raise fail(str(e)) from None
    if executor not in ("local", "ray"):
        raise fail(f"--executor must be local or ray, got {executor!r}")
    web, quality = _web_options(signals, prefilter or prefilter_config is not None, prefilter_config)
    web.fast = fast_extract
    opts = IngestOptions(min_chars=min_chars, max_chars=max_chars, after=cutoff,
                         require_date=require_date, near_dup_threshold=near_dup,
                         default_license=license, batch_size=batch_size,
                         where=conds, to_simplified=to_simplified, langs=tuple(lang or ()),
                         prefilter=quality, web=web)
    try:
        for p in paths:  # refused before the store is opened
            check_input(p, folders=True)
    except InputError as e:
        raise fail(str(e)) from None
    if stats:
        return _print_stats(paths, opts, as_json)
    with Store(db) as store, progress_bar() as bar:
        task = bar.add_task("ingest", total=None)
        try:
            if executor == "ray":
                from ...construct.web.ray_ingest import ingest_ray

                report = ingest_ray(paths, store, opts, workers=workers, address=ray_address,
                                    shard_mb=shard_mb, on_row=lambda: bar.advance(task))
            else:
                report = ingest(paths, store, opts, on_row=lambda: bar.advance(task))
        except (FileNotFoundError, WhereError) as e:
            raise fail(str(e)) from None
        except RuntimeError as e:  # RayUnavailable
            raise fail(str(e)) from None
    print_quarantined(report.quarantined)
    if as_json:
        print_json({"read": report.read, "added": report.added,
                    "already_stored": report.already_stored, "filtered": dict(report.filtered),
                    "quarantined": len(report.quarantined), "hashed": report.hashed,
                    "would_change": dict(report.would_change)})
        return
    why = f" {dict(report.filtered)}" if report.filtered else ""
    console.print(f"read {report.read}, added {report.added}, already stored "
                  f"{report.already_stored}, filtered {sum(report.filtered.values())}{why}, "
                  f"quarantined {len(report.quarantined)} -> {db}")
    console.print(f"near-duplicate index ({report.layout} bands x rows): hashed {report.hashed} "
                  f"new texts, {report.indexed} already indexed"
                  + (f", {report.backfilled} stored texts indexed for the first time"
                     if report.backfilled else ""))
    if report.would_change:
        flags = "".join(f for f, on in ((f" --after {after}", after),
                                        (" --require-date", require_date),
                                        (f" --min-chars {min_chars}", min_chars != 12),
                                        (f" --max-chars {max_chars}", max_chars != 50_000),
                                        (f" --near-dup {near_dup}", near_dup != 0.8),
                                        *((f" --lang {x}", True) for x in lang or ()),
                                        (" --prefilter", quality is not None),
                                        (f" --prefilter-config {prefilter_config}",
                                         prefilter_config),
                                        *((f" --where '{c}'", True) for c in conds)) if on)
        warn("note:", f"{sum(report.would_change.values())} stored texts would change under "
                      f"these options ({dict(report.would_change)}) but were left as they are; "
                      f"to re-apply: coig-writer construct refilter --db {db}{flags} --dry-run")


def _web_options(signals: Path | None, prefilter: bool, config: Path | None):
    """(ExtractOptions, PrefilterConfig or None) from the web options; exit 2 on a bad file."""
    from ...construct.web.extract import ExtractOptions
    from ...construct.web.quality import PrefilterConfig, load_prefilters
    from ...construct.web.sites import SitesError, load_sites

    try:
        web = ExtractOptions(signals=load_sites(signals) if signals else None)
        quality = (load_prefilters(config) if config else PrefilterConfig()) if prefilter else None
    except (SitesError, ValueError) as e:
        raise fail(str(e)) from None
    return web, quality


def _print_stats(paths: list[Path], opts, as_json: bool) -> None:
    """`ingest --stats`: the table of what each filter would remove."""
    from rich.table import Table

    from ...construct.web.quality import FILTERS
    from ...construct.web.stats import filter_stats

    prefilters = {name for name, _ in FILTERS}
    with progress_bar() as bar:
        task = bar.add_task("reading", total=None)
        st = filter_stats(paths, opts, on_row=lambda: bar.advance(task))
    if as_json:
        return print_json(st.as_dict())
    console.print(f"read {st.read} rows: {st.texts} texts, quarantined {st.quarantined}"
                  + (f", no page {dict(st.by_reader)}" if st.by_reader else ""))
    table = Table(title="what each filter would remove (of the texts)")
    for col in ("filter", "threshold", "removes", "share", "alone", "recorded as"):
        table.add_column(col, justify="left" if col in ("filter", "threshold") else "right")
    for name, limit in st.thresholds.items():
        n = st.removes.get(name, 0)
        first = str(st.first.get(name, 0)) if st.prefilters_on or name not in prefilters \
            else "(off)"
        table.add_row(name, limit, str(n), f"{n / max(st.texts, 1):.1%}",
                      str(st.alone.get(name, 0)), first)
    console.print(table)
    console.print(f"kept {st.kept} of {st.texts} texts; {st.exact_duplicates} exact duplicates "
                  "within the input (near duplicates are decided against the store: not counted)")
    return None


@construct_app.command("refilter")
def refilter_cmd(
    db: DbOpt = Path(DEFAULT_DB),
    min_chars: MinCharsOpt = 12,
    max_chars: MaxCharsOpt = 50_000,
    after: AfterOpt = None,
    require_date: RequireDateOpt = False,
    near_dup: NearDupOpt = 0.8,
    touch_constructed: Annotated[bool, typer.Option(
        help="Also change texts that already have a triplet (they are listed either way).")] = False,
    dry_run: Annotated[bool, typer.Option(help="Report the changes without making them.")] = False,
    where: WhereOpt = None,
    lang: KeepLangOpt = None,
    prefilter: PrefilterOpt = False,
    prefilter_config: PrefilterConfigOpt = None,
) -> None:
    """Re-apply the filters to every stored text with these options (the same options and
    defaults as `ingest`): filtered texts whose reason no longer holds become ok, ok texts that
    now fail are filtered, duplicates are re-decided in ingest order. Running it twice with the
    same options changes nothing the second time.

    Example (keep popular texts only): coig-writer construct refilter --where 'likes>=5000'
    """
    from ...construct.ingest import IngestOptions, refilter
    from ...construct.where import WhereError, parse_conditions

    try:
        conds = parse_conditions(where or [])
        cutoff = dt.date.fromisoformat(after) if after else None
    except WhereError as e:
        raise fail(str(e)) from None
    except ValueError:
        raise fail(f"--after must be YYYY-MM-DD, got {after!r}") from None
    _, quality = _web_options(None, prefilter or prefilter_config is not None, prefilter_config)
    opts = IngestOptions(min_chars=min_chars, max_chars=max_chars, after=cutoff,
                         require_date=require_date, near_dup_threshold=near_dup, where=conds,
                         langs=tuple(lang or ()), prefilter=quality)
    if not Path(db).exists():
        raise fail(f"no such store: {db}")
    with Store(db) as store, progress_bar() as bar:
        task = bar.add_task("refilter", total=sum(store.corpus.count_sources().values()))
        try:
            report = refilter(store, opts, touch_constructed=touch_constructed, dry_run=dry_run,
                              on_row=lambda: bar.advance(task))
        except WhereError as e:
            raise fail(str(e)) from None
    verb = "would change" if dry_run else "changed"
    console.print(f"{verb} {report.changed} texts: "
                  + (", ".join(f"{k}: {v}" for k, v in sorted(report.changes.items())) or "none"))
    console.print(f"before: {dict(sorted(report.before.items()))}")
    console.print(f"after:  {dict(sorted(report.after.items()))}")
    if report.hashed:
        console.print(f"hashed {report.hashed} texts that had no near-duplicate signature")
    for sid, change in report.constructed:
        done = "changed" if touch_constructed and not dry_run else "left as is"
        warn("has a triplet:", f"{sid} ({change}): {done}")
    if report.constructed and not touch_constructed:
        warn("note:", f"{len(report.constructed)} texts with a triplet were not changed; "
                      "add --touch-constructed to change them too")


@construct_app.command("quarantine")
def quarantine_cmd(db: DbOpt = Path(DEFAULT_DB)) -> None:
    """List quarantined input rows with file:line and the error."""
    with read_store(db) as store:
        n = 0
        for q in store.corpus.iter_quarantine():
            n += 1
            console.print(f"{q.where}: {q.error}", markup=False)
        console.print(f"{n} quarantined rows")


@construct_app.command("status")
def status_cmd(db: DbOpt = Path(DEFAULT_DB), as_json: JsonOpt = False,
               runs: int = typer.Option(5, help="How many recent construct runs to show.")) -> None:
    """Texts and triplets by status, review acceptance, quarantined rows, the recent construct
    runs and the last run's LLM usage per stage (prompt tokens, cached prompt tokens, share).

    Example: coig-writer construct status --db out/store.sqlite --json
    """
    from ...review.service import acceptance_counts, load_policy

    with read_store(db) as store:
        texts, triplets = store.corpus.count_sources(), store.construct.count_triplets()
        acceptance = acceptance_counts(store, load_policy(store)) if triplets else None
        quarantined = sum(1 for _ in store.corpus.iter_quarantine())
        recent = [r for r in store.runs.runs() if r["kind"] == "construct"][-runs:] if runs else []
    status = {"texts": texts, "triplets": triplets, "acceptance": acceptance,
              "quarantined": quarantined, "runs": recent}
    if as_json:
        print_json(status)
    else:
        print_status(db, status)
