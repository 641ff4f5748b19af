"""`eval generate`: each model's answers to the selected prompts."""

from __future__ import annotations

from pathlib import Path

import typer

from ...store import DEFAULT_DB, Store
from ..common import (
    DbOpt,
    GiveUpAfterOpt,
    MaxFailuresOpt,
    TimeoutOpt,
    console,
    policy_spec,
    writable_places,
)
from ..summaries import JsonOpt, print_json
from . import eval_app
from .jobs import ExecutorOpt, _finish, _llm, _run
from .sets import _eval_prompts


@eval_app.command("generate")
def eval_generate_cmd(
    name: str = typer.Option(..., "--name", help="Name of the model under test in reports, e.g. CW+20k."),
    db: DbOpt = Path(DEFAULT_DB),
    backend: str = typer.Option("local", help="local (llama.cpp), openai (a server) or "
                                "transformers (a checkpoint folder, in-process, batched)."),
    model: str | None = typer.Option(None, help="Embedded model / .gguf, the server's model "
                                     "name, or a checkpoint folder (transformers)."),
    base_url: list[str] | None = typer.Option(None, help="OpenAI-compatible server URL (repeatable)."),
    endpoints: Path | None = typer.Option(None, help="YAML list of endpoints (see docs/scaling.md)."),
    api_key_env: str = typer.Option("OPENAI_API_KEY", help="Name of the env var with the key."),
    prompt_set: str | None = typer.Option(None, "--set", help="Only this prompt set."),
    lang: str | None = typer.Option(None, help="Only zh or en prompts."),
    temperature: float = typer.Option(0.7),
    max_tokens: int = typer.Option(2048),
    max_tokens_cap: int | None = typer.Option(None, help="A truncated answer is asked again once "
                                              "with up to this many tokens (default 2 x)."),
    seed: int = typer.Option(0),
    system: str | None = typer.Option(None, help="Optional system prompt."),
    concurrency: int = typer.Option(4, help="Prompts in flight (per worker with Ray)."),
    executor: str = ExecutorOpt,
    ray_address: str | None = typer.Option(None, help="Ray address (default: a local instance)."),
    workers: int = typer.Option(2, help="Ray: shards at once."),
    shard_size: int = typer.Option(32, help="Ray: prompts per shard."),
    prices: Path | None = typer.Option(None, help="YAML model -> {input, output} USD per M tokens."),
    batch_out: Path | None = typer.Option(None, help="Write the requests as a Batch API file here."),
    batch_in: Path | None = typer.Option(None, help="Load a Batch API output file first."),
    timeout: TimeoutOpt = 300.0,
    max_failures: MaxFailuresOpt = 10,
    give_up_after: GiveUpAfterOpt = 300.0,
    as_json: JsonOpt = False,
) -> None:
    """Generate answers for the stored prompts; resumable; thinking (reasoning_content or
    <think>) is stored apart from the answer; truncated answers are retried once with more
    tokens, then marked truncated.

    Example: coig-writer eval generate --name G --backend openai --base-url http://host:8000/v1 --model g7b

    Example: coig-writer eval generate --name CW --backend transformers --model runs/CW/final
    """
    from ...evaluate.generate import GenerateJob

    writable_places(db, executor)
    with Store(db) as store:
        prompts = _eval_prompts(store, prompt_set, lang)
        llm, spec = _llm(store, backend, model, base_url, endpoints, api_key_env, concurrency,
                         prices, batch_out or batch_in,
                         policy_spec(timeout, max_failures, give_up_after))
        job = GenerateJob(store, llm, name, prompts, temperature=temperature,
                          max_tokens=max_tokens, max_tokens_cap=max_tokens_cap, seed=seed,
                          system=system)
        skipped = len(prompts) - job.count_pending()
        out, info = _run(store, job, llm, spec, f"generate {name}", executor, concurrency,
                         workers, shard_size, ray_address, batch_out, batch_in, job.count_pending())
        left = job.count_pending() if out.stopped else 0
    done = out.done - len(out.errors) - out.labels.get("deferred", 0)
    if not as_json:
        console.print(f"{name}: {done} new answers ({out.labels.get('truncated', 0)} truncated), "
                      f"{skipped} already there")
    doc = _finish(llm, out, info, left, "prompts",
                  {"name": name, "new_answers": done, "already_there": skipped,
                   "truncated": out.labels.get("truncated", 0)} if as_json else None)
    if doc is not None:
        print_json(doc)
        if out.errors or out.stopped:
            raise typer.Exit(1)
