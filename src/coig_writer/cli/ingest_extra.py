"""`construct refilter`: re-apply the corpus filters to stored texts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from ..store import DEFAULT_DB, Store
from .common import DbOpt, console, fail, progress_bar, warn
from .construct import construct_app


@construct_app.command("refilter")
def refilter_cmd(
    db: DbOpt = Path(DEFAULT_DB),
    min_chars: int = typer.Option(12, help="Shorter texts are filtered."),
    max_chars: int = typer.Option(50_000, help="Longer texts are filtered."),
    after: str | None = typer.Option(None, help="Keep texts dated after YYYY-MM-DD."),
    require_date: bool = typer.Option(False, help="Filter texts without a date."),
    where: list[str] | None = typer.Option(
        None, help="Keep texts whose metadata meets this condition: FIELD OP VALUE with a "
                   "number, true/false or a string, e.g. 'likes>=5000', 'featured==true'; "
                   "repeat for several (all must hold)."),
    near_dup: float = typer.Option(0.8, help="Character 5-gram Jaccard at or above which a text "
                                             "is a near duplicate of an earlier one."),
    touch_constructed: Annotated[bool, typer.Option(
        help="Also change texts that already have a triplet (they are listed either way).")] = False,
    dry_run: Annotated[bool, typer.Option(help="Report the changes without making them.")] = False,
) -> None:
    """Re-apply the filters to every stored text with these options (the same options and
    defaults as `ingest`): filtered texts whose reason no longer holds become ok, ok texts that
    now fail are filtered, duplicates are re-decided in ingest order. Running it twice with the
    same options changes nothing the second time.

    Example (undo a mistaken `ingest --after`): coig-writer construct refilter --db corpus.sqlite
    Example (keep popular texts only): coig-writer construct refilter --where 'likes>=5000' --dry-run
    """
    from ..construct.ingest import IngestOptions, refilter
    from ..construct.where import WhereError, parse_conditions

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
                         where=conds)
    if not Path(db).exists():
        raise fail(f"no such store: {db}")
    with Store(db) as store, progress_bar() as bar:
        task = bar.add_task("refilter", total=sum(store.count_sources().values()))
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
