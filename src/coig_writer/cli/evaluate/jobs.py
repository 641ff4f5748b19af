"""What `eval generate` and `eval judge` share: the cached backend, the executor run, the closing
summary."""

from __future__ import annotations

import typer

from ..common import (
    backend_spec,
    build_or_fail,
    console,
    fail,
    print_stopped,
    progress_bar,
    warn,
)
from ..summaries import accounting_table

ExecutorOpt = typer.Option("local", help="local (asyncio here) or ray.")


def _llm(store, backend, model, base_url, endpoints, api_key_env, concurrency, prices, batch,
         policy=None):
    from ...llm import Accounting, CachedBackend, LLMError, load_prices

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
    from ...executors.ray_executor import RayUnavailable
    from ...executors.run import run_job
    from ...llm import LLMError

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
