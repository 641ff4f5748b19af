"""`construct run`, `demo` and `estimate`: triplet construction on the local executor, on Ray or
as Batch API files."""

from __future__ import annotations

import asyncio
from importlib import resources
from pathlib import Path

import typer

from ...store import DEFAULT_DB, Store
from ..common import (
    DbOpt,
    GiveUpAfterOpt,
    MaxFailuresOpt,
    TimeoutOpt,
    backend_spec,
    build_or_fail,
    call_logger,
    console,
    err,
    fail,
    policy_spec,
    print_stopped,
    progress_bar,
    triplet_panel,
    warn,
    writable_places,
)
from ..summaries import JsonOpt, print_summary
from . import construct_app
from .corpus import ingest_cmd
from .options import LayoutOpt, PromptCacheOpt


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
    layout: str | None = LayoutOpt,
    prompt_cache: bool = PromptCacheOpt,
    as_json: JsonOpt = False,
) -> None:
    """Turn stored texts into triplets: screen, reconstruct prompt, reasoning, validate, score,
    refine. Safe to kill and rerun: finished LLM calls are replayed from the cache.

    Examples:
      coig-writer construct run --backend openai --base-url http://127.0.0.1:8000/v1 --model qwen
      coig-writer construct run --backend openai --endpoints servers.yaml --model qwen --executor ray
      coig-writer construct run --backend openai --model gpt-4o-mini --batch-out waves/
    """
    from ...construct.config import ConstructConfig
    from ...construct.pipeline import ConstructPipeline
    from ...llm import Accounting, CachedBackend, LLMError, load_prices

    if executor not in ("local", "ray"):
        raise fail(f"--executor must be local or ray, got {executor!r}")
    if (batch_out or batch_in) and backend != "openai":
        raise fail("batch files need --backend openai and --model (the model the batch runs)")
    try:
        cfg = ConstructConfig.load(config, lang=lang, max_rounds=max_rounds, layout=layout)
        acc = Accounting(load_prices(prices))
    except (ValueError, OSError, LLMError) as e:
        raise fail(str(e)) from None
    spec = backend_spec(backend, model, base_url, api_key_env, concurrency, n_ctx, endpoints,
                        cfg.structured_output, batch=bool(batch_out or batch_in),
                        policy=policy_spec(timeout, max_failures, give_up_after),
                        prompt_cache=prompt_cache)
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
                summary = _batch_run(pipe, be, batch_out, batch_in, limit, redo, as_json)
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
    print_summary(summary, as_json=as_json)
    print_stopped(summary.stopped, left, "texts")
    if summary.errors or summary.stopped:
        raise typer.Exit(1)


async def _local_run(pipe, limit, concurrency, redo, bar, task, show=False, follow=False):
    from ...construct.runner import run_local

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
    from ...construct.runner import run_on_ray
    from ...executors.ray_executor import RayUnavailable

    with progress_bar() as bar:
        task = bar.add_task("construct (ray)", total=None)
        try:
            return run_on_ray(pipe, spec, limit=limit, redo=redo, workers=workers,
                              shard_size=shard_size, concurrency=concurrency,
                              address=ray_address, on_start=lambda n: bar.update(task, total=n),
                              on_item=lambda _label: bar.advance(task), follow=follow)
        except RayUnavailable as e:
            raise fail(str(e)) from None


def _batch_run(pipe, be, batch_out, batch_in, limit, redo, as_json=False):
    from ...construct.runner import run_batch_wave

    out = err if as_json else console  # with --json, stdout holds the JSON summary only
    out_dir = batch_out or (batch_in.parent if batch_in else Path("batches"))
    summary, info = run_batch_wave(pipe, out_dir, batch_in=batch_in, limit=limit, redo=redo,
                                   payload=be.payload, served_model=be.model)
    loaded = info.get("loaded")
    if loaded:
        out.print(f"loaded {batch_in}: {loaded['loaded']} answers, "
                  f"{loaded['already_cached']} already cached, {loaded['failed']} failed, "
                  f"{loaded['unknown']} unknown")
        for e in loaded["errors"][:20]:
            warn("batch", e)
    if info["wave"]:
        out.print(f"[bold]{info['requests']} requests[/bold] written to {info['wave']}; "
                  "submit it to a Batch API (OpenAI, or vLLM's run_batch), then rerun with "
                  "--batch-in <output file>")
    else:
        out.print("[green]no requests left: every item is finished[/green]")
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
    from ...construct.config import ConstructConfig
    from ...construct.estimate import estimate
    from ...llm import LLMError, load_prices

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


@construct_app.command("demo")
def demo_cmd(
    db: DbOpt = Path("out/demo.sqlite"),
    limit: int = typer.Option(2, help="How many sample texts to construct."),
    max_rounds: int = typer.Option(1, help="Refinement rounds after the first."),
    model: str | None = typer.Option(None, help="Embedded model (default qwen2.5-coder-1.5b)."),
    out: Path = typer.Option(Path("out/demo_triplets.jsonl"), help="Where the triplets go."),
    concurrency: int = typer.Option(1, help="Texts in flight (1 shows the first triplet soonest)."),
    config: Path | None = typer.Option(None, help="YAML with ConstructConfig fields."),
    layout: str | None = LayoutOpt,
    prompt_cache: bool = PromptCacheOpt,
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
            api_key_env="OPENAI_API_KEY", concurrency=concurrency, limit=limit, config=config,
            lang=None, max_rounds=max_rounds, redo=False, n_ctx=8192, executor="local",
            ray_address=None, workers=1, shard_size=1, prices=None, batch_out=None,
            batch_in=None, log_calls=True, show=True, timeout=3600.0, max_failures=10,
            give_up_after=300.0, follow=False, layout=layout, prompt_cache=prompt_cache,
            as_json=False)
    from ..data import export_cmd

    export_cmd(out=out, db=db, status="all", full=True)
    console.print(f"[green]triplets written to {out.resolve()}[/green] (store: {db.resolve()})")
