"""`construct gate`: the gate (LLM-free checks, validation, scores) over any triplets file."""

from __future__ import annotations

from pathlib import Path

import typer

from ...store import DEFAULT_DB, Store
from ..common import console, fail, print_quarantined, print_stopped, warn, writable_places
from ..jobs import open_llm, watching
from ..options import (
    ApiKeyEnvOpt,
    BackendOpt,
    BaseUrlOpt,
    ConcurrencyOpt,
    ConfigOpt,
    DbOpt,
    EndpointsOpt,
    ExecutorOpt,
    GiveUpAfterOpt,
    JsonOpt,
    LangOpt,
    LimitOpt,
    LogCallsOpt,
    MaxFailuresOpt,
    ModelOpt,
    NCtxOpt,
    PricesOpt,
    RayAddressOpt,
    ShardSizeOpt,
    TimeoutOpt,
    WorkersOpt,
    backend_spec,
    executor_spec,
)
from ..summaries import accounting_table, counts, print_gate_health, print_json
from . import construct_app
from .options import ScoreRuleOpt, VerdictsOutOpt


@construct_app.command("gate")
def gate_cmd(
    file: Path = typer.Argument(..., help="Triplets file (.jsonl/.json/.parquet) with id, "
                                "query, thought, answer: the released format or an export."),
    out: VerdictsOutOpt = ...,
    db: DbOpt = Path(DEFAULT_DB),
    config: ConfigOpt = None,
    keep: bool = typer.Option(False, "--store", help="Also keep the rows as triplets in the "
                              "store with the gate's verdict, for the review app."),
    score_rule: ScoreRuleOpt = None,
    lang: LangOpt = None,
    limit: LimitOpt = None,
    backend: BackendOpt = "local",
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    endpoints: EndpointsOpt = None,
    api_key_env: ApiKeyEnvOpt = "OPENAI_API_KEY",
    n_ctx: NCtxOpt = 8192,
    timeout: TimeoutOpt = 300.0,
    max_failures: MaxFailuresOpt = 10,
    give_up_after: GiveUpAfterOpt = 300.0,
    prices: PricesOpt = None,
    log_calls: LogCallsOpt = False,
    concurrency: ConcurrencyOpt = 4,
    executor: ExecutorOpt = "local",
    ray_address: RayAddressOpt = None,
    workers: WorkersOpt = 2,
    shard_size: ShardSizeOpt = 32,
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
    from ...construct.gate_job import GateJob, verdict_row
    from ...construct.health import health_row, score_health
    from ...dataset.io import write_rows
    from ...executors.runs import RunBook, run_recorded
    from ..common import checked_input

    opts = locals()
    checked_input(file)
    if out.suffix not in (".jsonl", ".parquet"):
        raise fail(f"--out {out}: choose a .jsonl or .parquet file name")
    cfg, spec, ex = gate_specs(opts)
    writable_places(db, ex.kind)
    with Store(db) as store:
        items, bad = read_quarantining(store, file)
        if not items:
            raise fail(f"{file} holds no triplet the gate can judge")
        llm = open_llm(store, spec, prices, log_calls)
        book = RunBook(store, "gate", {"file": str(file), "rows": len(items),
                                       "config": cfg.model_dump(), "model": llm.model_id})
        job = GateJob(store, llm, cfg, items, keep=keep)
        with watching("gate") as watch:
            run = run_recorded(job, llm, book, ex, spec, limit=limit, watch=watch)
        verdicts = [(i, job.verdict(i)) for i in items]
        rows = [verdict_row(i, v) for i, v in verdicts if v is not None]
        health = score_health([health_row(v["scores"], v["expected_scores"],
                                          v.get("score_confidence")) for _, v in verdicts if v],
                              warn_share=cfg.spread_warn_share)
        summary = {"file": str(file), "out": str(out), "run_id": run.run_id,
                   "rows": len(items), "quarantined": len(bad), "judged": len(rows),
                   "pending": len(items) - len(rows),
                   "statuses": _count(r["status"] for r in rows),
                   "failed_checks": _count(c for r in rows for c in r["checks"]),
                   "score_rule": cfg.score_rule, "gate_health": health,
                   "errors": run.outcome.errors, "stopped": run.outcome.stopped or None,
                   "accounting": run.accounting, "totals": run.totals}
        store.runs.finish_run(run.run_id, {**run.record(), **summary})
    write_rows(rows, out)
    _report(summary, health, as_json)
    exit_if_unfinished(summary["errors"], summary["stopped"] or "", summary["pending"])


def gate_specs(opts: dict) -> tuple:
    """(construction config, backend spec asking for its structured output, executor spec) of
    a command that runs the gate, from its options (`config`, `lang`, `score_rule` and the
    backend and executor groups); exit 2 on a config that does not load."""
    from ...construct.config import ConstructConfig

    try:
        cfg = ConstructConfig.load(opts["config"], lang=opts["lang"], score_rule=opts["score_rule"])
    except (ValueError, OSError) as e:
        raise fail(str(e)) from None
    spec = backend_spec(opts).model_copy(update={"json_schema": cfg.structured_output})
    return cfg, spec, executor_spec(opts)


def read_quarantining(store: Store, file: Path) -> tuple[list, list]:
    """The gate items of a triplets file; its bad rows quarantined in the store and listed."""
    from ...construct.gate_job import read_gate_items

    items, bad = read_gate_items(file)
    for q in bad:
        store.corpus.quarantine(q)
    print_quarantined(bad)
    return items, bad


def exit_if_unfinished(errors: dict, stopped: str, pending: int) -> None:
    """Each failed row with its error, why the run stopped; exit 1 when either happened."""
    for key, e in errors.items():
        warn("failed", f"{key}: {e} (rerun to retry)", "red")
    print_stopped(stopped, pending, "rows")
    if errors or stopped:
        raise typer.Exit(1)


def _report(summary: dict, health: dict, as_json: bool) -> None:
    if as_json:
        print_json(summary)
        for w in health["warnings"]:
            warn("gate warning:", w, "bold red")
    else:
        console.print(f"{summary['file']}: {summary['judged']} of {summary['rows']} rows judged "
                      f"-> {summary['out']} ({counts(summary['statuses'])}); failed checks: "
                      f"{counts(summary['failed_checks'])}", highlight=False)
        if summary["accounting"]:
            console.print(accounting_table(summary["accounting"]))
        print_gate_health(health)


def _count(values) -> dict[str, int]:
    from collections import Counter

    return dict(Counter(values).most_common())
