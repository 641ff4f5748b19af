"""`construct usefulness`: REER usefulness of each triplet's reasoning (optional gate)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import typer

from ...store import DEFAULT_DB, Store
from ..common import (
    console,
    fail,
    load_usefulness_config,
    progress_bar,
)
from ..options import (
    ApiKeyEnvOpt,
    ConcurrencyOpt,
    ConfigOpt,
    DbOpt,
    DeviceOpt,
    LimitOpt,
    MinGainOpt,
    RedoOpt,
    ScorerModelOpt,
    ScorerOpt,
    ScorerTokenizerOpt,
    ScorerUrlOpt,
    StatusOpt,
)
from . import construct_app


@construct_app.command("usefulness")
def usefulness_cmd(
    db: DbOpt = Path(DEFAULT_DB),
    status: StatusOpt = "accepted",
    scorer: ScorerOpt = "transformers",
    model: ScorerModelOpt = None,
    base_url: ScorerUrlOpt = None,
    tokenizer: ScorerTokenizerOpt = None,
    chat_template: Path | None = typer.Option(None, help="vllm/sglang: Jinja chat template file "
                                                         "(default: --tokenizer's, else ChatML)."),
    api_key_env: ApiKeyEnvOpt = "OPENAI_API_KEY",
    device: DeviceOpt = "cpu",
    batch_size: int = typer.Option(4, help="Sequences per forward pass or request."),
    concurrency: ConcurrencyOpt = 1,
    config: ConfigOpt = None,
    window_chars: int | None = typer.Option(None, help="Longest text piece scored at once."),
    min_gain: MinGainOpt = None,
    gate: bool = typer.Option(False, help="Accepted items with gain < min_usefulness_gain go to "
                                          "needs_review, the reason named."),
    limit: LimitOpt = None,
    redo: RedoOpt = False,
) -> None:
    """Clipped mean NLL of each text given prompt only, prompt + its reasoning, and prompt +
    another triplet's reasoning (REER measure); stores values and gains. Resumable.

    Example: coig-writer construct usefulness --scorer transformers --model qwen2.5-coder-0.5b
    """
    from ...construct.usefulness import run_usefulness
    from ...llm.scoring import CachedScorer, ScorerError, make_scorer

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
