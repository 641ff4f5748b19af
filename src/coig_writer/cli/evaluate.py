"""Evaluation commands."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from ..store import DEFAULT_DB, Store
from .common import (
    DbOpt,
    backend_or_fail,
    console,
    fail,
    import_file,
    print_quarantined,
    progress_bar,
    warn,
)

eval_app = typer.Typer(help="Generate, judge, and report win rates and diversity.",
                       no_args_is_help=True)


def _eval_prompts(store: Store, prompt_set: str | None, lang: str | None):
    prompts = store.eval_prompts(prompt_set, lang)
    if not prompts:
        raise fail("no evaluation prompts selected; add some with `coig-writer eval prompts`")
    return prompts


@eval_app.command("prompts")
def eval_prompts_cmd(
    sources: Annotated[list[str], typer.Argument(help="bundled-zh, bundled-en, or .jsonl/.parquet files.")],
    db: DbOpt = Path(DEFAULT_DB),
) -> None:
    """Add evaluation prompt sets (rows: id, lang, prompt, genre?, constraints?).

    Example: coig-writer eval prompts bundled-zh bundled-en my_prompts.jsonl
    """
    from ..evaluate.prompt_sets import add_prompt_set

    with Store(db) as store:
        for src in sources:
            try:
                n, bad = add_prompt_set(store, src)
            except FileNotFoundError as e:
                raise fail(str(e)) from None
            print_quarantined(bad)
            console.print(f"{src}: {n} prompts")


@eval_app.command("generate")
def eval_generate_cmd(
    name: str = typer.Option(..., "--name", help="Name of the model under test in reports, e.g. CW+20k."),
    db: DbOpt = Path(DEFAULT_DB),
    backend: str = typer.Option("local", help="local or openai."),
    model: str | None = typer.Option(None, help="Embedded model / .gguf, or the server's model name."),
    base_url: str | None = typer.Option(None, help="OpenAI-compatible server URL."),
    api_key_env: str = typer.Option("OPENAI_API_KEY", help="Name of the env var with the key."),
    prompt_set: str | None = typer.Option(None, "--set", help="Only this prompt set."),
    lang: str | None = typer.Option(None, help="Only zh or en prompts."),
    temperature: float = typer.Option(0.7),
    max_tokens: int = typer.Option(2048),
    seed: int = typer.Option(0),
    system: str | None = typer.Option(None, help="Optional system prompt."),
    concurrency: int = typer.Option(4),
) -> None:
    """Generate answers for the stored prompts; resumable; <think> segments are split off.

    Example: coig-writer eval generate --name G --backend openai --base-url http://host:8000/v1 --model g7b
    """
    from ..evaluate.generate import generate

    with Store(db) as store:
        prompts = _eval_prompts(store, prompt_set, lang)
        be = backend_or_fail(backend, model, base_url, api_key_env, concurrency)
        with progress_bar() as bar:
            task = bar.add_task(f"generate {name}", total=len(prompts))
            counts = asyncio.run(generate(
                store, be, name, prompts, temperature=temperature, max_tokens=max_tokens,
                seed=seed, system=system, concurrency=concurrency,
                on_item=lambda g: bar.advance(task)))
            bar.update(task, completed=len(prompts))
    console.print(f"{name}: {counts['done']} new answers, {counts['skipped']} already there")
    for pid, e in counts["errors"].items():
        warn("failed", f"{pid}: {e} (rerun to retry)", "red")
    if counts["errors"]:
        raise typer.Exit(1)


@eval_app.command("judge")
def eval_judge_cmd(
    models: Annotated[list[str], typer.Argument(help="Model names (as given to eval generate).")],
    db: DbOpt = Path(DEFAULT_DB),
    mode: str = typer.Option("pairwise", help="pairwise (both orders) or ranking (K-way)."),
    backend: str = typer.Option("local"),
    model: str | None = typer.Option(None, help="Judge model."),
    base_url: str | None = typer.Option(None),
    api_key_env: str = typer.Option("OPENAI_API_KEY"),
    judge_name: str | None = typer.Option(None, help="Name recorded with verdicts."),
    prompt_set: str | None = typer.Option(None, "--set"),
    lang: str | None = typer.Option(None),
    max_tokens: int = typer.Option(300),
    concurrency: int = typer.Option(4),
) -> None:
    """LLM-judge the models' answers: pairwise in both orders (disagreement = tie) or ranking.

    Example: coig-writer eval judge CW+20k G --backend openai --base-url http://host:8000/v1 --model j
    """
    from ..evaluate.judge import Judge

    if mode not in ("pairwise", "ranking"):
        raise fail("--mode must be pairwise or ranking")
    with Store(db) as store:
        prompts = _eval_prompts(store, prompt_set, lang)
        judge = Judge(store, backend_or_fail(backend, model, base_url, api_key_env, concurrency),
                      judge_name, max_tokens=max_tokens, concurrency=concurrency)
        with progress_bar() as bar:
            task = bar.add_task("judge", total=judge.planned(prompts, models, mode))
            n = asyncio.run(judge.run(prompts, models, mode, on_item=lambda: bar.advance(task)))
    console.print(f"{n} new verdicts by {judge.name}")
    for key, e in judge.failures.items():
        warn("no verdict", f"{key}: {e} (rerun to retry)")


@eval_app.command("import-human")
def eval_import_human_cmd(path: Path, db: DbOpt = Path(DEFAULT_DB)) -> None:
    """Import human blind rankings (JSONL rows: prompt_id, rater, ranks or order).

    Example: coig-writer eval import-human rankings.jsonl
    """
    from ..evaluate.human import import_human_rankings

    import_file(db, path, import_human_rankings, "rankings")


@eval_app.command("report")
def eval_report_cmd(
    out: Path = typer.Option(Path("out/report"), help="Output folder."),
    db: DbOpt = Path(DEFAULT_DB),
    source: str = typer.Option("judge", help="judge or human verdicts."),
    judge_name: str | None = typer.Option(None, help="Only this judge's verdicts."),
    models: list[str] | None = typer.Option(None, "--model", help="Models to include (repeat)."),
    rounds: int = typer.Option(1000, help="Bootstrap rounds."),
    seed: int = typer.Option(0),
) -> None:
    """Win-rate matrix with CIs, sign tests, Bradley-Terry, length control, per-language and
    per-genre breakdowns, cross-lingual gap, contamination, diversity; HTML + PNG + JSON.

    Example: coig-writer eval report --out out/report --source human
    """
    from ..evaluate.analysis import analyze
    from ..evaluate.report import write_report

    with Store(db) as store:
        try:
            result = analyze(store, source=source, judge=judge_name, models=models or None,
                             rounds=rounds, seed=seed)
        except ValueError as e:
            raise fail(str(e)) from None
        lengths = {m: [len(g.answer) for g in store.generations(m)]
                   for m in result["overall"]["models"]}
    files = write_report(result, lengths, out)
    console.print(f"report: {files['html']} (JSON: {files['json']}, {len(files) - 2} plots)")
