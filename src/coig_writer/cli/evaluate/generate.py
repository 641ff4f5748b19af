"""`eval generate`: each model's answers to the selected prompts."""

from __future__ import annotations

from pathlib import Path

import typer

from ...store import DEFAULT_DB, Store
from ..common import console, writable_places
from ..jobs import open_llm
from ..options import (
    AnswersNameOpt,
    ApiKeyEnvOpt,
    BackendOpt,
    BaseUrlOpt,
    BatchInOpt,
    BatchOutOpt,
    ConcurrencyOpt,
    DbOpt,
    EndpointsOpt,
    ExecutorOpt,
    GiveUpAfterOpt,
    JsonOpt,
    LangFilterOpt,
    MaxFailuresOpt,
    MaxTokensOpt,
    ModelOpt,
    NCtxOpt,
    PricesOpt,
    PromptCacheOpt,
    PromptSetOpt,
    RayAddressOpt,
    SeedOpt,
    ShardSizeOpt,
    TimeoutOpt,
    WorkersOpt,
    backend_spec,
    executor_spec,
)
from ..summaries import print_json
from . import eval_app
from .jobs import print_outcome, run_eval
from .sets import selected_prompts


@eval_app.command("generate")
def eval_generate_cmd(
    name: AnswersNameOpt,
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
    prompt_set: PromptSetOpt = None,
    lang: LangFilterOpt = None,
    temperature: float = typer.Option(0.7),
    max_tokens: MaxTokensOpt = 2048,
    max_tokens_cap: int | None = typer.Option(None, help="A truncated answer is asked again once "
                                              "with up to this many tokens (default 2 x)."),
    seed: SeedOpt = 0,
    system: str | None = typer.Option(None, help="Optional system prompt."),
    as_json: JsonOpt = False,
) -> None:
    """Generate answers for the stored prompts; resumable; thinking (reasoning_content or
    <think>) is stored apart from the answer; truncated answers are retried once with more
    tokens, then marked truncated.

    Example: coig-writer eval generate --name G --backend openai --base-url http://host:8000/v1 --model g7b

    Example: coig-writer eval generate --name CW --backend transformers --model runs/CW/final
    """
    from ...evaluate.generate import GenerateJob

    spec, ex = backend_spec(locals()), executor_spec(locals())
    writable_places(db, ex.kind)
    with Store(db) as store:
        prompts = selected_prompts(store, prompt_set, lang)
        llm = open_llm(store, spec, prices)
        job = GenerateJob(store, llm, name, prompts, temperature=temperature,
                          max_tokens=max_tokens, max_tokens_cap=max_tokens_cap, seed=seed,
                          system=system)
        skipped = len(prompts) - job.count_pending()
        run = run_eval(store, job, llm, spec, ex, f"generate {name}")
        left = job.count_pending() if run.outcome.stopped else 0
    out = run.outcome
    done = out.done - len(out.errors) - out.labels.get("deferred", 0)
    if not as_json:
        console.print(f"{name}: {done} new answers ({out.labels.get('truncated', 0)} truncated), "
                      f"{skipped} already there")
    doc = print_outcome(run, left, "prompts",
                        {"name": name, "new_answers": done, "already_there": skipped,
                         "truncated": out.labels.get("truncated", 0)} if as_json else None)
    if doc is not None:
        print_json(doc)
        if out.errors or out.stopped:
            raise typer.Exit(1)
