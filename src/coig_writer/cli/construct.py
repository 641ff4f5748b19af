"""Corpus ingestion and triplet construction commands."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from ..store import DEFAULT_DB, Store
from .common import (
    DbOpt,
    backend_or_fail,
    console,
    fail,
    print_quarantined,
    progress_bar,
    warn,
)

construct_app = typer.Typer(help="Corpus ingestion and triplet construction.", no_args_is_help=True)


@construct_app.command("ingest")
def ingest_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (.txt .md .jsonl .json .parquet).")],
    db: DbOpt = Path(DEFAULT_DB),
    min_chars: int = typer.Option(12, help="Shorter texts are filtered."),
    max_chars: int = typer.Option(50_000, help="Longer texts are filtered."),
    after: str | None = typer.Option(None, help="Keep texts dated after YYYY-MM-DD (paper: 2022-10-31)."),
    require_date: bool = typer.Option(False, help="Filter texts without a date."),
    near_dup: float = typer.Option(0.8, help="Character 5-gram Jaccard at or above which a text "
                                             "is a near duplicate of a stored one."),
    license: str | None = typer.Option(None, help="License for rows that name none."),
    batch_size: Annotated[int, typer.Option(help="Rows per transaction (a kill -9 loses at most "
                                                 "the open batch; a rerun redoes it).")] = 1000,
) -> None:
    """Read a corpus into the store, with dedup and filters; bad rows are quarantined.

    Texts already stored keep their status; when these options would change some of them, the
    count is reported: re-apply them with `coig-writer construct refilter`.

    Example: coig-writer construct ingest corpus/ extra.jsonl --after 2022-10-31
    """
    from ..construct.ingest import IngestOptions, ingest

    try:
        cutoff = dt.date.fromisoformat(after) if after else None
    except ValueError:
        raise fail(f"--after must be YYYY-MM-DD, got {after!r}") from None
    opts = IngestOptions(min_chars=min_chars, max_chars=max_chars, after=cutoff,
                         require_date=require_date, near_dup_threshold=near_dup,
                         default_license=license, batch_size=batch_size)
    with Store(db) as store, progress_bar() as bar:
        task = bar.add_task("ingest", total=None)
        try:
            report = ingest(paths, store, opts, on_row=lambda: bar.advance(task))
        except FileNotFoundError as e:
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
                                        (f" --near-dup {near_dup}", near_dup != 0.8)) if on)
        warn("note:", f"{sum(report.would_change.values())} stored texts would change under "
                      f"these options ({dict(report.would_change)}) but were left as they are; "
                      f"to re-apply: coig-writer construct refilter --db {db}{flags} --dry-run")


@construct_app.command("run")
def run_cmd(
    db: DbOpt = Path(DEFAULT_DB),
    backend: str = typer.Option("local", help="local (embedded llama.cpp) or openai (any "
                                              "OpenAI-compatible server)."),
    model: str | None = typer.Option(None, help="Embedded model name or .gguf path (local), "
                                                   "or the server's model name (openai)."),
    base_url: str | None = typer.Option(None, help="e.g. http://127.0.0.1:8000/v1"),
    api_key_env: str = typer.Option("OPENAI_API_KEY", help="Name of the env var with the key."),
    concurrency: int = typer.Option(4, help="Items and requests in flight."),
    limit: int | None = typer.Option(None, help="Process at most this many pending texts."),
    config: Path | None = typer.Option(None, help="YAML with ConstructConfig fields."),
    lang: str | None = typer.Option(None, help="Prompt language: zh or en (default zh)."),
    max_rounds: int | None = typer.Option(None, help="Refinement rounds after the first."),
    redo: bool = typer.Option(False, help="Reprocess texts that already have a triplet."),
    n_ctx: int = typer.Option(8192, help="Context window of the local model."),
) -> None:
    """Turn stored texts into triplets: screen, reconstruct prompt, reasoning, validate, score,
    refine. Safe to kill and rerun: finished LLM calls are replayed from the cache.

    Example: coig-writer construct run --backend openai --base-url http://127.0.0.1:8000/v1 --model qwen
    """
    from ..construct.config import ConstructConfig
    from ..construct.pipeline import ConstructPipeline

    cfg = ConstructConfig.load(config, lang=lang, max_rounds=max_rounds)
    with Store(db) as store:
        if not store.count_sources().get("ok"):
            raise fail(f"{db} holds no texts; run `coig-writer construct ingest` first")
        be = backend_or_fail(backend, model, base_url, api_key_env, concurrency, n_ctx)
        pipe = ConstructPipeline(store, be, cfg)
        with progress_bar() as bar:
            task = bar.add_task("construct", total=None)

            def on_start(n: int) -> None:
                bar.update(task, total=n)

            def on_item(trip: object) -> None:
                bar.advance(task)

            summary = asyncio.run(pipe.run(limit=limit, concurrency=concurrency, redo=redo,
                                           on_item=on_item, on_start=on_start))
    console.print(f"run {summary.run_id}: {summary.pending} texts in {summary.elapsed_s:.1f}s; "
                  f"{dict(summary.statuses)}; LLM calls {summary.llm_calls}, cache hits "
                  f"{summary.cache_hits}")
    for sid, e in summary.errors.items():
        warn("failed", f"{sid}: {e} (rerun to retry)", "red")
    if summary.errors:
        raise typer.Exit(1)


@construct_app.command("status")
def status_cmd(db: DbOpt = Path(DEFAULT_DB)) -> None:
    """Counts of texts, triplets by status, quarantined rows and recent runs."""
    with Store(db) as store:
        console.print(f"texts: {store.count_sources()}")
        console.print(f"triplets: {store.count_triplets()}")
        console.print(f"quarantined rows: {sum(1 for _ in store.iter_quarantine())}")
        for r in store.runs()[-5:]:
            state = "finished" if r["finished_at"] else "interrupted or running"
            console.print(f"run {r['id']} ({state}): {json.dumps(r['summary'], ensure_ascii=False)}")


@construct_app.command("quarantine")
def quarantine_cmd(db: DbOpt = Path(DEFAULT_DB)) -> None:
    """List quarantined input rows with file:line and the error."""
    with Store(db) as store:
        n = 0
        for q in store.iter_quarantine():
            n += 1
            console.print(f"{q.where}: {q.error}", markup=False)
        console.print(f"{n} quarantined rows")


@construct_app.command("demo")
def demo_cmd(
    db: DbOpt = Path("out/demo.sqlite"),
    limit: int = typer.Option(2, help="How many sample texts to construct."),
    max_rounds: int = typer.Option(1, help="Refinement rounds after the first."),
    model: str | None = typer.Option(None, help="Embedded model (default qwen2.5-coder-1.5b)."),
    out: Path = typer.Option(Path("out/demo_triplets.jsonl"), help="Where the triplets go."),
) -> None:
    """Ingest the bundled sample of classical Chinese texts, construct triplets with the
    embedded local model, and export them.

    Example: coig-writer construct demo --limit 5 --max-rounds 2
    """
    sample = resources.files("coig_writer").joinpath("data/sample/classical_zh.jsonl")
    with resources.as_file(sample) as path:
        ingest_cmd([path], db=db, min_chars=12, max_chars=50_000, after=None,
                   require_date=False, near_dup=0.8, license=None)
    run_cmd(db=db, backend="local", model=model, base_url=None, api_key_env="OPENAI_API_KEY",
            concurrency=1, limit=limit, config=None, lang=None, max_rounds=max_rounds, redo=False,
            n_ctx=8192)
    from .data import export_cmd

    export_cmd(out=out, db=db, status="all", full=True)
    console.print(f"[green]triplets written to {out.resolve()}[/green] (store: {db.resolve()})")
