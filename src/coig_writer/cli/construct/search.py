"""`construct search-reasoning`: perplexity-guided rewriting of the reasoning, segment by segment."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from ...store import DEFAULT_DB, Store
from ..common import (
    build_or_fail,
    call_logger,
    console,
    fail,
    load_usefulness_config,
    progress_bar,
)
from ..options import (
    ApiKeyEnvOpt,
    BackendOpt,
    BaseUrlOpt,
    ConfigOpt,
    DbOpt,
    DeviceOpt,
    LimitOpt,
    LogCallsOpt,
    ModelOpt,
    NCtxOpt,
    ScorerOpt,
    SearchStepsOpt,
    StatusOpt,
    backend_spec,
)
from . import construct_app

if TYPE_CHECKING:
    from ...construct.config import ConstructConfig
    from ...llm import BackendSpec


def search_stage(store: Store, spec: BackendSpec, cfg: ConstructConfig, run_id: str,
                 config: Path | None) -> None:
    """`search.enabled`: the optional reasoning search over the run's accepted triplets."""
    from ...construct.search import search_run_output
    from ...llm import LLMError
    from ...llm.scoring import ScorerError

    try:
        out = asyncio.run(search_run_output(store, build_or_fail(spec), cfg, run_id,
                                            load_usefulness_config(config)))
    except (LLMError, ScorerError) as e:
        raise fail(f"search stage: {e} (rerun to resume)") from None
    if out is not None:
        console.print(f"reasoning search: {out.searched} searched, {out.improved} improved (new "
                      f"versions for review), {out.rejected_by_checks} candidates failed the "
                      f"checks, {out.seconds:.1f}s")


@construct_app.command("search-reasoning")
def search_reasoning_cmd(
    db: DbOpt = Path(DEFAULT_DB),
    backend: BackendOpt = "local",
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    api_key_env: ApiKeyEnvOpt = "OPENAI_API_KEY",
    n_ctx: NCtxOpt = 8192,
    scorer: ScorerOpt = None,
    scorer_model: str | None = typer.Option(None, help="Scorer model: folder, .gguf, embedded "
                                                       "name, or the served model name."),
    scorer_base_url: str | None = typer.Option(None, help="vllm/sglang scorer server."),
    device: DeviceOpt = "cpu",
    config: ConfigOpt = None,
    candidates: int | None = typer.Option(None, help="Rewrites per step (REER: 2)."),
    max_steps: SearchStepsOpt = None,
    target_gain: float | None = typer.Option(None, help="Stop once the usefulness gain "
                                                        "reaches this."),
    status: StatusOpt = "accepted",
    limit: LimitOpt = None,
    log_calls: LogCallsOpt = False,
) -> None:
    """Rewrite each triplet's reasoning one decision segment at a time: K candidates per step
    from the generator (the backend options), LLM-free checks on each, the usefulness scorer
    (default: the config's search.scorer) keeps the one that makes the text most predictable;
    an improved reasoning becomes a new version for review. Resumable: rerun after a kill and
    finished calls and scores come from the cache.

    Example: coig-writer construct search-reasoning --model qwen2.5-coder-1.5b --scorer-model
    qwen2.5-coder-0.5b --max-steps 4 --limit 10
    """
    spec = backend_spec(locals())
    from ...construct.config import ConstructConfig
    from ...construct.search import ReasoningSearch, run_search
    from ...llm import CachedBackend, LLMError
    from ...llm.scoring import CachedScorer, ScorerError, make_scorer

    try:
        cfg = ConstructConfig.load(config)
    except (ValueError, OSError) as e:
        raise fail(str(e)) from None
    over = {"candidates": candidates, "max_steps": max_steps, "target_gain": target_gain,
            "scorer": scorer, "scorer_model": scorer_model, "scorer_base_url": scorer_base_url}
    cfg.search = cfg.search.model_copy(update={k: v for k, v in over.items() if v is not None})
    ucfg = load_usefulness_config(config)
    with Store(db) as store:
        try:
            sc = make_scorer(cfg.search.scorer, model=cfg.search.scorer_model,
                             base_url=cfg.search.scorer_base_url, device=device,
                             api_key=os.environ.get(api_key_env))
        except ScorerError as e:
            raise fail(str(e)) from None
        llm = CachedBackend(build_or_fail(spec), store)
        if log_calls:
            llm.listeners.append(call_logger())
        cached = CachedScorer(sc, store)
        search = ReasoningSearch(store, llm, cached, cfg, ucfg)

        async def go():
            try:
                with progress_bar() as bar:
                    task = bar.add_task("search", total=None)
                    return await run_search(store, search, status=None if status == "all"
                                            else status, limit=limit,
                                            on_item=lambda t, r: bar.advance(task))
            finally:
                await llm.aclose()
                await cached.aclose()

        try:
            summary = asyncio.run(go())
        except (LLMError, ScorerError) as e:
            raise fail(f"{e} (rerun to resume)") from None
    if summary.outcomes:
        table = Table(title="reasoning search (usefulness gain = NLL prompt only - NLL with "
                            "reasoning)")
        for col in ("triplet", "gain before", "gain after", "steps", "kept", "failed checks",
                    "new version", "seconds"):
            table.add_column(col, justify="left" if col == "triplet" else "right")
        for o in summary.outcomes:
            table.add_row(o["triplet_id"], f"{o['gain_before']:+.3f}", f"{o['gain_after']:+.3f}",
                          str(o["steps"]), str(o["kept"]), str(o["rejected_by_checks"]),
                          f"v{o['to_version']}" if o.get("to_version") else "-",
                          f"{o['seconds']:.1f}")
        console.print(table)
    console.print(f"searched {summary.searched}, improved {summary.improved}, already searched "
                  f"or empty {summary.skipped}; {summary.steps} steps, "
                  f"{summary.rejected_by_checks} candidates failed the checks; generator calls "
                  f"{llm.misses} (cache hits {llm.hits}), scorer calls {cached.misses} (cache "
                  f"hits {cached.hits}), {summary.seconds:.1f}s")
