"""`eval judge` and `eval estimate`: pairwise, ranking and rubric verdicts by one judge or an
ensemble."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ...store import DEFAULT_DB, Store
from ..common import console, fail, warn, writable_places
from ..jobs import open_llm
from ..options import (
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
    JudgeModeOpt,
    JudgeNameOpt,
    JudgesOpt,
    LangFilterOpt,
    MaxFailuresOpt,
    MaxTokensOpt,
    ModelNameOpt,
    ModelOpt,
    NCtxOpt,
    PricesOpt,
    PromptCacheOpt,
    PromptSetOpt,
    RayAddressOpt,
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

if TYPE_CHECKING:
    from ...executors.spec import ExecutorSpec
    from ...llm import BackendSpec


@dataclass(frozen=True)
class JudgeRequest:
    """What a judge run judges, and how its outcome is shown."""

    models: list[str]
    mode: str = "pairwise"
    prompt_set: str | None = None
    lang: str | None = None
    max_tokens: int = 300
    prices: Path | None = None
    as_json: bool = False


@eval_app.command("judge")
def eval_judge_cmd(
    models: Annotated[list[str], typer.Argument(help="Model names (as given to eval generate).")],
    db: DbOpt = Path(DEFAULT_DB),
    mode: JudgeModeOpt = "pairwise",
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
    shard_size: ShardSizeOpt = 64,
    batch_out: BatchOutOpt = None,
    batch_in: BatchInOpt = None,
    judges: JudgesOpt = None,
    judge_name: JudgeNameOpt = None,
    prompt_set: PromptSetOpt = None,
    lang: LangFilterOpt = None,
    max_tokens: MaxTokensOpt = 300,
    as_json: JsonOpt = False,
) -> None:
    """LLM-judge the models' answers: pairwise in both orders (disagreement = tie), ranking, or
    rubric scores per criterion, by one judge (--model, named --judge-name) or an ensemble
    (`--judge` repeated: every judge judges every task; the report gives each judge's figures,
    the pooled ones and the judges' agreement). Cached and resumable: a rerun asks only what is
    missing.

    Example: coig-writer eval judge A B --mode rubric --backend openai --base-url http://h:8000/v1 --model j

    Ensemble: coig-writer eval judge A B --backend openai --base-url http://gw/v1 --judge gpt-4.1 --judge o3
    """
    from ...evaluate.judge import MODES

    opts = locals()
    if mode not in MODES:
        raise fail(f"--mode must be one of {', '.join(MODES)}")
    plan = judge_plan(judges, model, judge_name, base_url, endpoints)
    ex = executor_spec(opts)
    writable_places(db, ex.kind)
    if len(plan) > 1 and ex.batch:
        raise fail("batch files hold one judge's requests: run each --judge separately")
    req = JudgeRequest(models, mode, prompt_set, lang, max_tokens, prices, as_json)
    failed = 0
    try:
        specs = [(name, backend_spec(opts, model=jmodel, base_url=urls, endpoints=eps))
                 for name, jmodel, urls, eps in plan]
        failed = judge_each(specs, db, ex, req)
    finally:  # the per-model endpoints files written for this run
        import shutil

        for folder in {p[3].parent for p in plan if p[3] and p[3].parent.name.startswith(
                "coig-judges-")}:
            shutil.rmtree(folder, ignore_errors=True)
    if failed:
        raise typer.Exit(1)


def judge_each(judges: list[tuple[str | None, BackendSpec]], db: Path, executor: ExecutorSpec,
               req: JudgeRequest) -> int:
    """Run every judge (its name, its backend) in turn; returns the number of failed tasks and
    runs (a judge whose servers are all down gives up; the next judge still runs). With
    `req.as_json`, one JSON document on stdout: {"judges": [summary per judge]}."""
    from ...evaluate.judge import Judge, JudgeJob

    failed = 0
    docs: list[dict] = []
    with Store(db) as store:
        prompts = selected_prompts(store, req.prompt_set, req.lang)
        for name, spec in judges:
            llm = open_llm(store, spec, req.prices)
            judge = Judge(store, llm, name, max_tokens=req.max_tokens,
                          concurrency=executor.concurrency)
            job = JudgeJob(judge, prompts, req.models, req.mode)
            run = run_eval(store, job, llm, spec, executor, f"judge {judge.name}")
            out = run.outcome
            left = job.count_pending() if out.stopped else 0
            new = out.labels.get("done", 0)
            if not req.as_json:
                console.print(f"{new} new verdicts by {judge.name}")
            for key, e in judge.failures.items():
                warn("no verdict", f"{key}: {e} (a rerun asks again)")
            failed += out.labels.get("failed", 0)
            try:
                doc = print_outcome(run, left, "judgments",
                                    {"judge": judge.name, "mode": req.mode, "new_verdicts": new,
                                     "no_verdict": dict(judge.failures)} if req.as_json else None)
            except typer.Exit:
                failed += 1
                continue
            if doc is not None:
                docs.append(doc)
                failed += bool(out.errors)
    if req.as_json:
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
    mode: JudgeModeOpt = "pairwise",
    prompt_set: PromptSetOpt = None,
    lang: LangFilterOpt = None,
    max_tokens: MaxTokensOpt = 300,
    judge_name: JudgeNameOpt = None,
    model: ModelNameOpt = "judge",
    judges: JudgesOpt = None,
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
        prompts = selected_prompts(store, prompt_set, lang)
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
