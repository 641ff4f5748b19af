"""`construct run`, `demo` and `estimate`: triplet construction on the local executor, on Ray or
as Batch API files."""

from __future__ import annotations

from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ...store import DEFAULT_DB, Store
from ..common import console, err, fail, print_stopped, triplet_panel, warn, writable_places
from ..jobs import open_llm, watching
from ..options import (
    ApiKeyEnvOpt,
    BackendOpt,
    BaseUrlOpt,
    BatchInOpt,
    BatchOutOpt,
    ConcurrencyOpt,
    ConfigOpt,
    DbOpt,
    EndpointsOpt,
    ExecutorOpt,
    GiveUpAfterOpt,
    JsonOpt,
    LangOpt,
    LimitOpt,
    LogCallsOpt,
    MaxFailuresOpt,
    ModelNameOpt,
    ModelOpt,
    NCtxOpt,
    OutFileOpt,
    PricesOpt,
    PromptCacheOpt,
    RayAddressOpt,
    RedoOpt,
    ShardSizeOpt,
    TimeoutOpt,
    WorkersOpt,
    backend_spec,
    executor_spec,
)
from ..summaries import print_gate_health, print_summary
from . import construct_app
from .corpus import ingest_cmd
from .options import LayoutOpt, MaxRoundsOpt

if TYPE_CHECKING:
    from ...construct.pipeline import ConstructPipeline, RunSummary
    from ...executors.spec import ExecutorSpec
    from ...llm import BackendSpec


@dataclass(frozen=True)
class ConstructRequest:
    """What a construction run does, besides where it runs and with which backend."""

    config: Path | None = None
    lang: str | None = None
    max_rounds: int | None = None
    layout: str | None = None
    limit: int | None = None
    redo: bool = False
    follow: bool = False
    show: bool = False
    log_calls: bool = False
    prices: Path | None = None
    as_json: bool = False
    health: bool = True  # the gate's health after the summary (the demo prints it last)


@construct_app.command("run")
def run_cmd(
    db: DbOpt = Path(DEFAULT_DB),
    backend: BackendOpt = "local",
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    endpoints: EndpointsOpt = None,
    api_key_env: ApiKeyEnvOpt = "OPENAI_API_KEY",
    concurrency: ConcurrencyOpt = 4,
    n_ctx: NCtxOpt = 8192,
    prompt_cache: PromptCacheOpt = True,
    timeout: TimeoutOpt = 300.0,
    max_failures: MaxFailuresOpt = 10,
    give_up_after: GiveUpAfterOpt = 300.0,
    prices: PricesOpt = None,
    executor: ExecutorOpt = "local",
    ray_address: RayAddressOpt = None,
    workers: WorkersOpt = 2,
    shard_size: ShardSizeOpt = 32,
    batch_out: BatchOutOpt = None,
    batch_in: BatchInOpt = None,
    limit: LimitOpt = None,
    config: ConfigOpt = None,
    lang: LangOpt = None,
    max_rounds: MaxRoundsOpt = None,
    layout: LayoutOpt = None,
    redo: RedoOpt = False,
    follow: bool = typer.Option(False, help="Also take texts ingested while the run goes (by "
                                "default a run does the texts pending when it starts)."),
    log_calls: LogCallsOpt = False,
    show: bool = typer.Option(False, help="Print each triplet (prompt, reasoning, scores, "
                              "reasons) as soon as it is finished."),
    as_json: JsonOpt = False,
) -> None:
    """Turn stored texts into triplets: screen, reconstruct prompt, reasoning, validate, score,
    refine. Safe to kill and rerun: finished LLM calls are replayed from the cache.

    Examples:
      coig-writer construct run --backend openai --base-url http://127.0.0.1:8000/v1 --model qwen
      coig-writer construct run --backend openai --endpoints servers.yaml --model qwen --executor ray
      coig-writer construct run --backend openai --model gpt-4o-mini --batch-out waves/
    """
    opts = locals()
    construct(db, backend_spec(opts), executor_spec(opts),
              ConstructRequest(**{f.name: opts[f.name] for f in fields(ConstructRequest)
                                  if f.name in opts}))


def construct(db: Path, backend: BackendSpec, executor: ExecutorSpec,
              req: ConstructRequest) -> None:
    """One construction run over the store `db`, with the backend and executor the specs name;
    prints the summary, exits 1 when items failed or every server gave up."""
    from ...construct.config import ConstructConfig
    from ...construct.pipeline import ConstructPipeline

    try:
        cfg = ConstructConfig.load(req.config, lang=req.lang, max_rounds=req.max_rounds,
                                   layout=req.layout)
    except (ValueError, OSError) as e:
        raise fail(str(e)) from None
    backend = backend.model_copy(update={"json_schema": cfg.structured_output})
    writable_places(db, executor.kind)
    with Store(db) as store:
        if not store.corpus.count_sources().get("ok"):
            raise fail(f"{db} holds no texts; run `coig-writer construct ingest` first")
        pipe = ConstructPipeline(store, open_llm(store, backend, req.prices, req.log_calls), cfg)
        summary = _run(pipe, backend, executor, req)
        if cfg.search.enabled and executor.name == "local":
            from .search import search_stage

            search_stage(store, backend, cfg, summary.run_id, req.config)
        left = pipe.count_pending(None, req.redo) if summary.stopped else 0
    print_summary(summary, as_json=req.as_json, health=req.health)
    print_stopped(summary.stopped, left, "texts")
    if summary.errors or summary.stopped:
        raise typer.Exit(1)


def _run(pipe: ConstructPipeline, backend: BackendSpec, executor: ExecutorSpec,
         req: ConstructRequest) -> RunSummary:
    from ...construct.runner import run_construct
    from ...llm import LLMError

    if executor.batch:  # no progress bar: a wave advances what the cache allows, then stops
        try:
            summary, info = run_construct(pipe, executor, backend, limit=req.limit,
                                          redo=req.redo)
        except LLMError as e:
            raise fail(str(e)) from None
        _batch_report(info, executor.batch_in, req.as_json)
        return summary
    with watching("construct (ray)" if executor.kind == "ray" else "construct") as watch:
        if req.show:
            watch.on_value = lambda trip: watch.bar.console.print(triplet_panel(trip),
                                                                  soft_wrap=False)
        return run_construct(pipe, executor, backend, limit=req.limit, redo=req.redo,
                             follow=req.follow, watch=watch)[0]


def _batch_report(info: dict, batch_in: Path | None, as_json: bool = False) -> None:
    out = err if as_json else console  # with --json, stdout holds the JSON summary only
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


@construct_app.command("estimate")
def estimate_cmd(
    db: DbOpt = Path(DEFAULT_DB),
    config: ConfigOpt = None,
    model: ModelNameOpt = "default",
    prices: PricesOpt = None,
    limit: LimitOpt = None,
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
    limit: LimitOpt = 2,
    max_rounds: MaxRoundsOpt = 1,
    model: ModelOpt = None,
    out: OutFileOpt = Path("out/demo_triplets.jsonl"),
    concurrency: ConcurrencyOpt = 1,
    config: ConfigOpt = None,
    layout: LayoutOpt = None,
    prompt_cache: PromptCacheOpt = True,
) -> None:
    """Ingest the bundled sample of classical Chinese texts, construct triplets with the
    embedded local model (one line per LLM answer as it arrives, each triplet shown when it is
    finished), and export them to --out. Concurrency 1 shows the first triplet soonest.

    Example: coig-writer construct demo --limit 5 --max-rounds 2
    """
    from ...executors.spec import ExecutorSpec
    from ...llm import BackendSpec, FailurePolicy
    from ..data import export_cmd

    sample = resources.files("coig_writer").joinpath("data/sample/classical_zh.jsonl")
    with resources.as_file(sample) as path:
        ingest_cmd([path], db=db, min_chars=12, max_chars=50_000, after=None,
                   require_date=False, near_dup=0.8, license=None)
    construct(db, BackendSpec(kind="local", model=model, concurrency=concurrency,
                              api_key_env="OPENAI_API_KEY", prompt_cache=prompt_cache,
                              policy=FailurePolicy(timeout_s=3600.0)),
              ExecutorSpec(concurrency=concurrency),
              ConstructRequest(config=config, max_rounds=max_rounds, layout=layout, limit=limit,
                               show=True, log_calls=True, health=False))
    out = out or Path("out/demo_triplets.jsonl")
    export_cmd(out=out, db=db, status="all", full=True)
    console.print(f"[green]triplets written to {out.resolve()}[/green] (store: {db.resolve()})")
    with Store(db) as store:  # the run's gate health comes last: can its scores discriminate?
        last = [r for r in store.runs.runs() if r["kind"] == "construct"][-1]
    print_gate_health((last["summary"] or {}).get("gate_health") or {"n": 0, "warnings": []})
