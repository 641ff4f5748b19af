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
from ..options import DbOpt, JsonOpt
from ..summaries import print_json, print_status
from . import construct_app
from .options import AfterOpt, MaxCharsOpt, MinCharsOpt, NearDupOpt, RequireDateOpt, WhereOpt


@construct_app.command("ingest")
def ingest_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (.txt .md .jsonl .json .parquet).")],
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
) -> None:
    """Read a corpus into the store, with dedup and filters; bad rows are quarantined.

    Texts already stored keep their status; when these options would change some of them, the
    count is reported: re-apply them with `coig-writer construct refilter`.

    Example: coig-writer construct ingest corpus/ extra.jsonl --after 2022-10-31 --where 'likes>=5000'
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
    opts = IngestOptions(min_chars=min_chars, max_chars=max_chars, after=cutoff,
                         require_date=require_date, near_dup_threshold=near_dup,
                         default_license=license, batch_size=batch_size,
                         where=conds)
    try:
        for p in paths:  # refused before the store is opened
            check_input(p, folders=True)
    except InputError as e:
        raise fail(str(e)) from None
    with Store(db) as store, progress_bar() as bar:
        task = bar.add_task("ingest", total=None)
        try:
            report = ingest(paths, store, opts, on_row=lambda: bar.advance(task))
        except (FileNotFoundError, WhereError) as e:
            raise fail(str(e)) from None
    print_quarantined(report.quarantined)
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
                                        *((f" --where '{c}'", True) for c in conds)) if on)
        warn("note:", f"{sum(report.would_change.values())} stored texts would change under "
                      f"these options ({dict(report.would_change)}) but were left as they are; "
                      f"to re-apply: coig-writer construct refilter --db {db}{flags} --dry-run")


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
    opts = IngestOptions(min_chars=min_chars, max_chars=max_chars, after=cutoff,
                         require_date=require_date, near_dup_threshold=near_dup, where=conds)
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
