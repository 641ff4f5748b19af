"""`construct`: corpus ingestion and refiltering, triplet construction (local, Ray, Batch API),
estimates, status, quarantine, the demo, and usefulness scoring."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from ..readers import InputError, check_input
from ..store import DEFAULT_DB, Store
from .common import (
    DbOpt,
    GiveUpAfterOpt,
    MaxFailuresOpt,
    TimeoutOpt,
    accounting_table,
    backend_spec,
    build_or_fail,
    call_logger,
    console,
    fail,
    load_usefulness_config,
    policy_spec,
    print_quarantined,
    print_stopped,
    print_summary,
    progress_bar,
    read_store,
    triplet_panel,
    warn,
    writable_places,
)

WhereOpt = Annotated[list[str] | None, typer.Option(
    help="Keep texts whose metadata meets FIELD OP VALUE (a number, true/false or a string), "
         "e.g. 'likes>=5000', 'featured==true'; repeat for several (all must hold).")]

construct_app = typer.Typer(help="Corpus ingestion and triplet construction.", no_args_is_help=True)


@construct_app.command("ingest")
def ingest_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (.txt .md .jsonl .json .parquet).")],
    db: DbOpt = Path(DEFAULT_DB),
    min_chars: int = typer.Option(12, help="Shorter texts are filtered."),
    max_chars: int = typer.Option(50_000, help="Longer texts are filtered."),
    after: str | None = typer.Option(None, help="Keep texts dated after YYYY-MM-DD (paper: 2022-10-31)."),
    require_date: bool = typer.Option(False, help="Filter texts without a date."),
    where: WhereOpt = None,
    near_dup: float = typer.Option(0.8, help="Character 5-gram Jaccard at or above which a text "
                                             "is a near duplicate of a stored one."),
    license: str | None = typer.Option(None, help="License for rows that name none."),
    batch_size: Annotated[int, typer.Option(help="Rows per transaction (a kill -9 loses at most "
                                                 "the open batch; a rerun redoes it).")] = 1000,
) -> None:
    """Read a corpus into the store, with dedup and filters; bad rows are quarantined.

    Texts already stored keep their status; when these options would change some of them, the
    count is reported: re-apply them with `coig-writer construct refilter`.

    Example: coig-writer construct ingest corpus/ extra.jsonl --after 2022-10-31 --where 'likes>=5000'
    """
    from ..construct.ingest import IngestOptions, ingest
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


@construct_app.command("run")
def run_cmd(
    db: DbOpt = Path(DEFAULT_DB),
    backend: str = typer.Option("local", help="local (embedded llama.cpp) or openai (any "
                                              "OpenAI-compatible server)."),
    model: str | None = typer.Option(None, help="Embedded model name or .gguf path (local), "
                                                   "or the server's model name (openai)."),
    base_url: list[str] | None = typer.Option(None, help="Server URL, e.g. "
                                              "http://127.0.0.1:8000/v1; repeat for several."),
    endpoints: Path | None = typer.Option(None, help="YAML list of endpoints (url, model, "
                                          "api_key_env, max_concurrency, weight, rpm, tpm)."),
    api_key_env: str = typer.Option("OPENAI_API_KEY", help="Name of the env var with the key."),
    concurrency: int = typer.Option(4, help="Items in flight (per worker with --executor ray)."),
    limit: int | None = typer.Option(None, help="Process at most this many pending texts."),
    config: Path | None = typer.Option(None, help="YAML with ConstructConfig fields."),
    lang: str | None = typer.Option(None, help="Prompt language: zh or en (default zh)."),
    max_rounds: int | None = typer.Option(None, help="Refinement rounds after the first."),
    redo: bool = typer.Option(False, help="Reprocess texts that already have a triplet."),
    n_ctx: int = typer.Option(8192, help="Context window of the local model."),
    executor: str = typer.Option("local", help="local (asyncio in this process) or ray."),
    ray_address: str | None = typer.Option(None, help="Ray cluster address (e.g. auto); "
                                           "default: start a local Ray instance."),
    workers: int = typer.Option(2, help="Ray: shards processed at once."),
    shard_size: int = typer.Option(32, help="Ray: texts per shard."),
    prices: Path | None = typer.Option(None, help="YAML model -> {input, output} USD per "
                                       "million tokens, for the cost column."),
    batch_out: Path | None = typer.Option(None, help="Write the next wave of requests as an "
                                          "OpenAI Batch API file into this folder."),
    batch_in: Path | None = typer.Option(None, help="Load a Batch API output file first."),
    log_calls: bool = typer.Option(False, help="Print one line per LLM answer (stage, item, "
                                   "tokens, tokens/s)."),
    show: bool = typer.Option(False, help="Print each triplet (prompt, reasoning, scores, "
                              "reasons) as soon as it is finished."),
    timeout: TimeoutOpt = 300.0,
    max_failures: MaxFailuresOpt = 10,
    give_up_after: GiveUpAfterOpt = 300.0,
    follow: bool = typer.Option(False, help="Also take texts ingested while the run goes (by "
                                "default a run does the texts pending when it starts)."),
) -> None:
    """Turn stored texts into triplets: screen, reconstruct prompt, reasoning, validate, score,
    refine. Safe to kill and rerun: finished LLM calls are replayed from the cache.

    Examples:
      coig-writer construct run --backend openai --base-url http://127.0.0.1:8000/v1 --model qwen
      coig-writer construct run --backend openai --endpoints servers.yaml --model qwen --executor ray
      coig-writer construct run --backend openai --model gpt-4o-mini --batch-out waves/
    """
    from ..construct.config import ConstructConfig
    from ..construct.pipeline import ConstructPipeline
    from ..llm import Accounting, CachedBackend, LLMError, load_prices

    if executor not in ("local", "ray"):
        raise fail(f"--executor must be local or ray, got {executor!r}")
    if (batch_out or batch_in) and backend != "openai":
        raise fail("batch files need --backend openai and --model (the model the batch runs)")
    try:
        cfg = ConstructConfig.load(config, lang=lang, max_rounds=max_rounds)
        acc = Accounting(load_prices(prices))
    except (ValueError, OSError, LLMError) as e:
        raise fail(str(e)) from None
    spec = backend_spec(backend, model, base_url, api_key_env, concurrency, n_ctx, endpoints,
                        cfg.structured_output, batch=bool(batch_out or batch_in),
                        policy=policy_spec(timeout, max_failures, give_up_after))
    writable_places(db, executor)
    with Store(db) as store:
        if not store.corpus.count_sources().get("ok"):
            raise fail(f"{db} holds no texts; run `coig-writer construct ingest` first")
        be = build_or_fail(spec)
        llm = CachedBackend(be, store, accounting=acc)
        if log_calls:
            llm.listeners.append(call_logger())
        pipe = ConstructPipeline(store, llm, cfg)
        try:
            if batch_out or batch_in:
                summary = _batch_run(pipe, be, batch_out, batch_in, limit, redo)
            elif executor == "ray":
                summary = _ray_run(pipe, spec, concurrency, limit, redo, workers, shard_size,
                                   ray_address, follow)
            else:
                with progress_bar() as bar:
                    task = bar.add_task("construct", total=None)
                    summary = asyncio.run(_local_run(pipe, limit, concurrency, redo, bar, task,
                                                     show, follow))
        except LLMError as e:
            raise fail(str(e)) from None
        if cfg.search.enabled and executor == "local" and not (batch_out or batch_in):
            from .search import search_stage

            search_stage(store, spec, cfg, summary.run_id, config)
        left = pipe.count_pending(None, redo) if summary.stopped else 0
    print_summary(summary)
    print_stopped(summary.stopped, left, "texts")
    if summary.errors or summary.stopped:
        raise typer.Exit(1)


async def _local_run(pipe, limit, concurrency, redo, bar, task, show=False, follow=False):
    from ..construct.runner import run_local

    def on_item(trip) -> None:
        bar.advance(task)
        if show and trip is not None:
            bar.console.print(triplet_panel(trip), soft_wrap=False)

    try:
        return await run_local(pipe, limit=limit, concurrency=concurrency, redo=redo, on_item=on_item,
                              on_start=lambda n: bar.update(task, total=n), follow=follow)
    finally:
        await pipe.llm.aclose()


def _ray_run(pipe, spec, concurrency, limit, redo, workers, shard_size, ray_address,
             follow=False):
    from ..construct.runner import run_on_ray
    from ..executors.ray_executor import RayUnavailable

    with progress_bar() as bar:
        task = bar.add_task("construct (ray)", total=None)
        try:
            return run_on_ray(pipe, spec, limit=limit, redo=redo, workers=workers,
                              shard_size=shard_size, concurrency=concurrency,
                              address=ray_address, on_start=lambda n: bar.update(task, total=n),
                              on_item=lambda _label: bar.advance(task), follow=follow)
        except RayUnavailable as e:
            raise fail(str(e)) from None


def _batch_run(pipe, be, batch_out, batch_in, limit, redo):
    from ..construct.runner import run_batch_wave

    out_dir = batch_out or (batch_in.parent if batch_in else Path("batches"))
    summary, info = run_batch_wave(pipe, out_dir, batch_in=batch_in, limit=limit, redo=redo,
                                   payload=be.payload, served_model=be.model)
    loaded = info.get("loaded")
    if loaded:
        console.print(f"loaded {batch_in}: {loaded['loaded']} answers, "
                      f"{loaded['already_cached']} already cached, {loaded['failed']} failed, "
                      f"{loaded['unknown']} unknown")
        for e in loaded["errors"][:20]:
            warn("batch", e)
    if info["wave"]:
        console.print(f"[bold]{info['requests']} requests[/bold] written to {info['wave']}; "
                      "submit it to a Batch API (OpenAI, or vLLM's run_batch), then rerun with "
                      "--batch-in <output file>")
    else:
        console.print("[green]no requests left: every item is finished[/green]")
    return summary


@construct_app.command("estimate")
def estimate_cmd(
    db: DbOpt = Path(DEFAULT_DB),
    config: Path | None = typer.Option(None, help="YAML with ConstructConfig fields."),
    model: str = typer.Option("default", help="Model name for the price table."),
    prices: Path | None = typer.Option(None, help="YAML model -> {input, output} USD per M."),
    limit: int | None = typer.Option(None, help="Only the first N pending texts."),
) -> None:
    """Predict calls, tokens and cost of constructing the pending texts, before a run: prompt
    tokens from the text lengths and the stage templates, answer tokens from the stage limits,
    both calibrated on the calls already in the store when there are any.

    Example: coig-writer construct estimate --model gpt-4o-mini --prices prices.yaml
    """
    from ..construct.config import ConstructConfig
    from ..construct.estimate import estimate
    from ..llm import LLMError, load_prices

    try:
        cfg = ConstructConfig.load(config)
        table = load_prices(prices)
    except (ValueError, OSError, LLMError) as e:
        raise fail(str(e)) from None
    with Store(db) as store:
        est = estimate(store, cfg, model, table, limit=limit)
    console.print(f"{est['items']} pending texts; calibrated on {est['calibration_calls']} "
                  f"cached calls")
    for row in est["stages"]:
        console.print(f"  {row['stage']:<20} calls {row['calls']:>8.0f}  prompt tokens "
                      f"{row['prompt_tokens']:>12,.0f}  completion tokens "
                      f"{row['completion_tokens']:>10,.0f}")
    cost = f"${est['cost_usd']:,.2f}" if est["cost_usd"] is not None else "n/a (no --prices row)"
    console.print(f"total: {est['calls']:,.0f} calls, {est['prompt_tokens']:,.0f} prompt + "
                  f"{est['completion_tokens']:,.0f} completion tokens; cost {cost}")


@construct_app.command("status")
def status_cmd(db: DbOpt = Path(DEFAULT_DB)) -> None:
    """Counts of texts, triplets by status, quarantined rows and recent runs."""
    with read_store(db) as store:
        console.print(f"texts: {store.corpus.count_sources()}")
        console.print(f"triplets: {store.construct.count_triplets()}")
        from ..review.service import acceptance_counts, load_policy

        if store.construct.count_triplets():
            console.print(f"acceptance (pipeline vs human review): "
                          f"{acceptance_counts(store, load_policy(store))}")
        console.print(f"quarantined rows: {sum(1 for _ in store.corpus.iter_quarantine())}")
        runs = [r for r in store.runs.runs() if r["kind"] == "construct"]
        for r in runs[-5:]:
            state = "finished" if r["finished_at"] else "interrupted or running"
            summ = {k: v for k, v in (r["summary"] or {}).items() if k != "accounting"}
            console.print(f"run {r['id']} ({state}): {json.dumps(summ, ensure_ascii=False)}")
        if runs and (runs[-1]["summary"] or {}).get("accounting"):
            console.print(accounting_table(runs[-1]["summary"]["accounting"]))


@construct_app.command("quarantine")
def quarantine_cmd(db: DbOpt = Path(DEFAULT_DB)) -> None:
    """List quarantined input rows with file:line and the error."""
    with read_store(db) as store:
        n = 0
        for q in store.corpus.iter_quarantine():
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
    concurrency: int = typer.Option(1, help="Texts in flight (1 shows the first triplet soonest)."),
) -> None:
    """Ingest the bundled sample of classical Chinese texts, construct triplets with the
    embedded local model (one line per LLM answer as it arrives, each triplet shown when it is
    finished), and export them.

    Example: coig-writer construct demo --limit 5 --max-rounds 2
    """
    sample = resources.files("coig_writer").joinpath("data/sample/classical_zh.jsonl")
    with resources.as_file(sample) as path:
        ingest_cmd([path], db=db, min_chars=12, max_chars=50_000, after=None,
                   require_date=False, near_dup=0.8, license=None)
    run_cmd(db=db, backend="local", model=model, base_url=None, endpoints=None,
            api_key_env="OPENAI_API_KEY", concurrency=concurrency, limit=limit, config=None,
            lang=None, max_rounds=max_rounds, redo=False, n_ctx=8192, executor="local",
            ray_address=None, workers=1, shard_size=1, prices=None, batch_out=None,
            batch_in=None, log_calls=True, show=True, timeout=3600.0, max_failures=10,
            give_up_after=300.0, follow=False)
    from .data import export_cmd

    export_cmd(out=out, db=db, status="all", full=True)
    console.print(f"[green]triplets written to {out.resolve()}[/green] (store: {db.resolve()})")


@construct_app.command("refilter")
def refilter_cmd(
    db: DbOpt = Path(DEFAULT_DB),
    min_chars: int = typer.Option(12, help="Shorter texts are filtered."),
    max_chars: int = typer.Option(50_000, help="Longer texts are filtered."),
    after: str | None = typer.Option(None, help="Keep texts dated after YYYY-MM-DD."),
    require_date: bool = typer.Option(False, help="Filter texts without a date."),
    near_dup: float = typer.Option(0.8, help="Character 5-gram Jaccard at or above which a text "
                                             "is a near duplicate of an earlier one."),
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
    from ..construct.ingest import IngestOptions, refilter
    from ..construct.where import WhereError, parse_conditions

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


@construct_app.command("usefulness")
def usefulness_cmd(
    db: DbOpt = Path(DEFAULT_DB),
    status: str = typer.Option("accepted", help="accepted, needs_review, rejected or all."),
    scorer: str = typer.Option("transformers", help="transformers (in-process), vllm or sglang."),
    model: str | None = typer.Option(None, help="transformers: model folder, .gguf or embedded "
                                                "name (qwen2.5-coder-0.5b); vllm/sglang: the "
                                                "served model name."),
    base_url: str | None = typer.Option(None, help="vllm/sglang server, e.g. "
                                                   "http://127.0.0.1:8000/v1"),
    tokenizer: str | None = typer.Option(None, help="vllm/sglang: local tokenizer folder "
                                                    "(default: the server's /tokenize)."),
    chat_template: Path | None = typer.Option(None, help="vllm/sglang: Jinja chat template file "
                                                         "(default: --tokenizer's, else ChatML)."),
    api_key_env: str = typer.Option("OPENAI_API_KEY", help="Name of the env var with the key."),
    device: str = typer.Option("cpu", help="transformers: cpu or cuda."),
    batch_size: int = typer.Option(4, help="Sequences per forward pass or request."),
    concurrency: int = typer.Option(1, help="Triplets in flight (e.g. 16 for a vLLM server)."),
    config: Path | None = typer.Option(None, help="Construct config YAML; its `usefulness:` "
                                                  "section is read."),
    window_chars: int | None = typer.Option(None, help="Longest text piece scored at once."),
    min_gain: float | None = typer.Option(None, help="Overrides min_usefulness_gain."),
    gate: bool = typer.Option(False, help="Accepted items with gain < min_usefulness_gain go to "
                                          "needs_review, the reason named."),
    limit: int | None = typer.Option(None, help="Score at most this many triplets."),
    redo: bool = typer.Option(False, help="Score again what was already scored."),
) -> None:
    """Clipped mean NLL of each text given prompt only, prompt + its reasoning, and prompt +
    another triplet's reasoning (REER measure); stores values and gains. Resumable.

    Example: coig-writer construct usefulness --scorer transformers --model qwen2.5-coder-0.5b
    """
    from ..construct.usefulness import run_usefulness
    from ..llm.scoring import CachedScorer, ScorerError, make_scorer

    cfg = load_usefulness_config(config, window_chars=window_chars, min_usefulness_gain=min_gain)
    if gate and cfg.min_usefulness_gain is None:
        raise fail("--gate needs min_usefulness_gain (--min-gain or the config's usefulness "
                   "section)")
    if chat_template is not None and not chat_template.exists():
        raise fail(f"no such chat template file: {chat_template}")
    with Store(db) as store:
        try:
            sc = make_scorer(scorer, model=model, base_url=base_url, tokenizer=tokenizer,
                             api_key=os.environ.get(api_key_env), device=device,
                             batch_size=batch_size,
                             chat_template=chat_template.read_text("utf-8") if chat_template
                             else None)
        except ScorerError as e:
            raise fail(str(e)) from None
        cached = CachedScorer(sc, store)
        with progress_bar() as bar:
            task = bar.add_task("usefulness", total=None)

            async def go():
                try:
                    return await run_usefulness(
                        store, cached, cfg, status=None if status == "all" else status,
                        redo=redo, gate=gate, limit=limit, concurrency=concurrency,
                        on_item=lambda t, r: bar.advance(task))
                finally:
                    await cached.aclose()

            try:
                summary = asyncio.run(go())
            except ScorerError as e:
                raise fail(f"{e} (rerun to resume)") from None
    console.print(f"scored {summary.scored}, already scored {summary.skipped}, in "
                  f"{summary.seconds:.1f}s; scorer cache hits {cached.hits}, calls "
                  f"{cached.misses}; gated to needs_review: {len(summary.gated)}")
