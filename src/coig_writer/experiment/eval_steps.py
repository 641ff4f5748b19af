"""Generation from each trained model and judging, through the resumable eval jobs and the
LLM cache: a killed step, rerun, asks only for what is not stored yet."""

from __future__ import annotations

import contextlib
from typing import Any

from .graph import Step
from .steps import Context, StepError, digest, versioned


def _run(ctx: Context, job: Any, llm: Any, concurrency: int) -> Any:
    from ..executors.run import run_job
    from ..executors.spec import ExecutorSpec
    from ..llm import LLMError

    try:
        out, _ = run_job(ctx.store, job, llm, ExecutorSpec(concurrency=concurrency))
    except LLMError as e:
        raise StepError(str(e)) from None
    return out


def _backend(spec: dict[str, Any]) -> Any:
    from ..llm import LLMError, make_backend
    from ..llm.models import ModelError

    try:
        return make_backend(**spec)
    except (LLMError, ModelError) as e:
        raise StepError(str(e)) from None


def run_generate(ctx: Context, step: Step, up: dict[str, dict], in_hash: str
                 ) -> tuple[dict, float | None]:
    """Answer the eval prompts with the trained model `step.target`, stored under its
    versioned name: in-process (transformers) or through a managed server."""
    from ..evaluate.generate import GenerateJob
    from ..llm import CachedBackend, LLMError
    from ..llm.managed import managed_server

    name = step.target or ""
    vname = versioned(name, in_hash)
    ids = up["prompts"]["ids"]
    prompts = [ctx.store.evaluation.get_eval_prompt(i) for i in ids]
    model_dir = up[f"train:{name}"]["model_dir"]
    g = ctx.plan.generation
    with contextlib.ExitStack() as stack:
        if g.engine == "transformers":
            spec = {"kind": "transformers", "model": model_dir, "concurrency": g.concurrency}
        else:
            log = stack.enter_context((ctx.folder / "models" / name / "serve.log").open("a"))
            try:
                url = stack.enter_context(managed_server(g.engine, model_dir, alias=vname,
                                                         log=log, extra_args=g.engine_args))
            except LLMError as e:
                raise StepError(str(e)) from None
            spec = {"kind": "openai", "base_url": [url], "model": vname,
                    "concurrency": g.concurrency}
        llm = CachedBackend(_backend(spec), ctx.store)
        job = GenerateJob(ctx.store, llm, vname, prompts, temperature=g.temperature,
                          max_tokens=g.max_tokens, max_tokens_cap=g.max_tokens_cap, seed=g.seed,
                          system=g.system)
        out = _run(ctx, job, llm, g.concurrency)
    if out.errors:
        key, e = next(iter(out.errors.items()))
        raise StepError(f"{len(out.errors)} of {len(ids)} prompts got no answer (a rerun asks "
                        f"again); first: {key}: {e}")
    gens = [ctx.store.evaluation.generations(vname, i)[0] for i in ids]
    totals = llm.accounting.totals()
    return {"model": vname, "ids": ids, "n": len(gens),
            "truncated": sum(x.truncated for x in gens), "new_calls": totals["calls"],
            "cache_hits": totals["cache_hits"], "completion_tokens": totals["completion_tokens"],
            # the name is in the hash: verdicts and reports refer to this version by it
            "hash": digest([vname, [[x.prompt_id, x.raw] for x in gens]])}, totals["cost_usd"]


def judge_backend(ctx: Context) -> Any:
    from ..llm import Accounting, CachedBackend, load_prices

    j = ctx.plan.judge
    spec = {"kind": j.backend, "model": j.model, "base_url": j.base_url,
            "endpoints": str(ctx.path(j.endpoints)) if j.endpoints else None,
            "api_key_env": j.api_key_env, "concurrency": j.concurrency}
    prices = load_prices(ctx.path(j.prices)) if j.prices else {}
    return CachedBackend(_backend(spec), ctx.store, accounting=Accounting(prices))


def judge_name(ctx: Context, step: Step, model_id: str) -> str:
    """The name verdicts are recorded under: the judge and a hash of its settings, so that
    changed settings ask again instead of reusing verdicts given under the old ones."""
    return f"{ctx.plan.judge.name or model_id}@{digest(step.config)[:6]}"


def run_judge(ctx: Context, step: Step, up: dict[str, dict], in_hash: str
              ) -> tuple[dict, float | None]:
    """Pairwise verdicts of `step.target` vs the reference, both orders (`judge:<name>`), or a
    K-way ranking of every model (`rank`)."""
    from ..evaluate.judge import Judge, JudgeJob

    gens = [up[d] for d in step.deps]
    models = [g["model"] for g in gens]
    ids = gens[0]["ids"]
    prompts = [ctx.store.evaluation.get_eval_prompt(i) for i in ids]
    j = ctx.plan.judge
    llm = judge_backend(ctx)
    name = judge_name(ctx, step, llm.model_id)
    judge = Judge(ctx.store, llm, name, max_tokens=j.max_tokens, concurrency=j.concurrency)
    mode = "ranking" if step.kind == "rank" else "pairwise"
    job = JudgeJob(judge, prompts, models, mode)
    total = len(judge.tasks(prompts, models, mode, include_done=True))
    out = _run(ctx, job, llm, j.concurrency)
    failed = {**judge.failures, **out.errors}
    if failed:
        key, e = next(iter(failed.items()))
        what = f"{len(failed)} of {total} verdicts failed; first: {key}: {e}"
        if len(failed) > j.max_failed * total:
            raise StepError(f"{what} (a rerun asks again; judge.max_failed allows "
                            f"{j.max_failed:.0%})")
        ctx.log(f"  {what} (within judge.max_failed {j.max_failed:.0%}; reported)")
    mine = [x for x in ctx.store.evaluation.judgments(source="judge", judge=name)
            if set(x.models) <= set(models) and x.prompt_id in set(ids)]
    totals = llm.accounting.totals()
    return {"judge": name, "judge_model": llm.model_id, "models": models, "mode": mode,
            "verdicts": len(mine), "failed": len(failed), "new_calls": totals["calls"],
            "cache_hits": totals["cache_hits"],
            "hash": digest(sorted([x.key, x.winner, x.ranks] for x in mine))}, totals["cost_usd"]
