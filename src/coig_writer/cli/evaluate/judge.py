"""`eval judge` and `eval estimate`: pairwise, ranking and rubric verdicts by one judge or an
ensemble."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ...store import DEFAULT_DB, Store
from ..common import (
    DbOpt,
    GiveUpAfterOpt,
    MaxFailuresOpt,
    TimeoutOpt,
    console,
    fail,
    policy_spec,
    warn,
    writable_places,
)
from ..summaries import JsonOpt, print_json
from . import eval_app
from .jobs import ExecutorOpt, _finish, _llm, _run
from .sets import _eval_prompts


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
    from ...evaluate.judge import MODES

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
    from ...evaluate.judge import Judge, JudgeJob

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

    from ...llm import LLMError
    from ...llm.endpoints import load_endpoints

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
    from ...evaluate.estimate import estimate
    from ...evaluate.judge import MODES

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
