"""`construct gate`: the gate (LLM-free checks, validation, scores) over any triplets file."""

from __future__ import annotations

from pathlib import Path

import typer

from ...store import DEFAULT_DB, Store
from ..common import (
    DbOpt,
    GiveUpAfterOpt,
    MaxFailuresOpt,
    TimeoutOpt,
    backend_spec,
    build_or_fail,
    call_logger,
    checked_input,
    console,
    fail,
    policy_spec,
    print_quarantined,
    print_stopped,
    progress_bar,
    warn,
    writable_places,
)
from ..summaries import JsonOpt, accounting_table, counts, print_gate_health, print_json
from . import construct_app


@construct_app.command("gate")
def gate_cmd(
    file: Path = typer.Argument(..., help="Triplets file (.jsonl/.json/.parquet) with id, "
                                "query, thought, answer: the released format or an export."),
    out: Path = typer.Option(..., "--out", help="Where the verdicts go (.jsonl or .parquet), "
                             "one row per input row in input order."),
    db: DbOpt = Path(DEFAULT_DB),
    config: Path | None = typer.Option(None, help="YAML with ConstructConfig fields "
                                       "(thresholds, checks, score_rule)."),
    keep: bool = typer.Option(False, "--store", help="Also keep the rows as triplets in the "
                              "store with the gate's verdict, for the review app."),
    backend: str = typer.Option("local", help="local (embedded llama.cpp), openai (any "
                                "OpenAI-compatible server) or transformers (a checkpoint)."),
    model: str | None = typer.Option(None, help="Embedded model name or .gguf path (local), "
                                     "or the server's model name (openai)."),
    base_url: list[str] | None = typer.Option(None, help="Server URL; repeat for several."),
    endpoints: Path | None = typer.Option(None, help="YAML list of endpoints."),
    api_key_env: str = typer.Option("OPENAI_API_KEY", help="Name of the env var with the key."),
    concurrency: int = typer.Option(4, help="Rows in flight (per worker with --executor ray)."),
    executor: str = typer.Option("local", help="local (asyncio in this process) or ray."),
    ray_address: str | None = typer.Option(None, help="Ray cluster address (default: local)."),
    workers: int = typer.Option(2, help="Ray: shards processed at once."),
    shard_size: int = typer.Option(32, help="Ray: rows per shard."),
    limit: int | None = typer.Option(None, help="Judge at most this many pending rows."),
    lang: str | None = typer.Option(None, help="Language of the instructions: zh or en."),
    score_rule: str | None = typer.Option(None, help="argmax or expected (default: config)."),
    log_calls: bool = typer.Option(False, help="Print one line per LLM answer."),
    timeout: TimeoutOpt = 300.0,
    max_failures: MaxFailuresOpt = 10,
    give_up_after: GiveUpAfterOpt = 300.0,
    as_json: JsonOpt = False,
) -> None:
    """Run a triplets file through the gate that `construct run` applies: the named LLM-free
    checks, the coherence validation and the six scores (with expected scores where the server
    returns logprobs), without reconstructing prompts or writing reasoning. Each output row has
    id, status (accepted/needs_review/rejected), reasons, checks (names of the failed checks),
    scores, expected_scores and score_mass. Cached and resumable: a rerun judges only rows not
    judged as they are now.

    Examples:
      coig-writer construct gate COIG-Writer.jsonl --out verdicts.jsonl
      coig-writer construct gate mine.jsonl --out v.jsonl --store --backend openai --model q72 --base-url URL
    """
    from ...construct.config import ConstructConfig
    from ...construct.gate_job import GateJob, read_gate_items, verdict_row
    from ...construct.health import health_row, score_health
    from ...dataset.io import write_rows
    from ...executors.ray_executor import RayUnavailable
    from ...executors.run import run_job
    from ...llm import Accounting, CachedBackend, LLMError

    checked_input(file)
    if out.suffix not in (".jsonl", ".parquet"):
        raise fail(f"--out {out}: choose a .jsonl or .parquet file name")
    if executor not in ("local", "ray"):
        raise fail(f"--executor must be local or ray, got {executor!r}")
    try:
        cfg = ConstructConfig.load(config, lang=lang, score_rule=score_rule)
    except (ValueError, OSError) as e:
        raise fail(str(e)) from None
    items, bad = read_gate_items(file)
    spec = backend_spec(backend, model, base_url, api_key_env, concurrency, endpoints=endpoints,
                        json_schema=cfg.structured_output,
                        policy=policy_spec(timeout, max_failures, give_up_after))
    writable_places(db, executor)
    with Store(db) as store:
        for q in bad:
            store.corpus.quarantine(q)
        print_quarantined(bad)
        if not items:
            raise fail(f"{file} holds no triplet the gate can judge")
        llm = CachedBackend(build_or_fail(spec), store, accounting=Accounting())
        if log_calls:
            llm.listeners.append(call_logger())
        run_id = store.runs.start_run("gate", {"file": str(file), "rows": len(items),
                                               "config": cfg.model_dump(), "model": llm.model_id})
        job = GateJob(store, llm, cfg, items, run_id=run_id, keep=keep)
        with progress_bar() as bar:
            task = bar.add_task("gate", total=job.count_pending(limit))
            try:
                outcome, _ = run_job(store, job, llm, executor=executor, backend_spec=spec,
                                     concurrency=concurrency, workers=workers,
                                     shard_size=shard_size, address=ray_address, limit=limit,
                                     on_item=lambda _label: bar.advance(task))
            except (RayUnavailable, LLMError) as e:
                raise fail(str(e)) from None
        verdicts = [(i, job.verdict(i)) for i in items]
        rows = [verdict_row(i, v) for i, v in verdicts if v is not None]
        health = score_health([health_row(v["scores"], v["expected_scores"],
                                          v.get("score_confidence")) for _, v in verdicts if v],
                              warn_share=cfg.spread_warn_share)
        summary = {"file": str(file), "out": str(out), "rows": len(items),
                   "quarantined": len(bad), "judged": len(rows),
                   "pending": len(items) - len(rows),
                   "statuses": _count(r["status"] for r in rows),
                   "failed_checks": _count(c for r in rows for c in r["checks"]),
                   "score_rule": cfg.score_rule, "gate_health": health,
                   "errors": outcome.errors, "stopped": outcome.stopped or None,
                   "accounting": llm.accounting.summary(), "totals": llm.accounting.totals()}
        store.runs.finish_run(run_id, summary)
    write_rows(rows, out)
    if as_json:
        print_json(summary)
        for w in health["warnings"]:
            warn("gate warning:", w, "bold red")
    else:
        console.print(f"{file}: {len(rows)} of {len(items)} rows judged -> {out} "
                      f"({counts(summary['statuses'])}); failed checks: "
                      f"{counts(summary['failed_checks'])}", highlight=False)
        if summary["accounting"]:
            console.print(accounting_table(summary["accounting"]))
        print_gate_health(health)
    for key, e in outcome.errors.items():
        warn("failed", f"{key}: {e} (rerun to retry)", "red")
    print_stopped(outcome.stopped, summary["pending"], "rows")
    if outcome.errors or outcome.stopped:
        raise typer.Exit(1)


def _count(values) -> dict[str, int]:
    from collections import Counter

    return dict(Counter(values).most_common())
