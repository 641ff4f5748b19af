"""`construct audit-gates`: the gate on real triplets and on counterfactual variants of them."""

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
from ..summaries import JsonOpt, accounting_table, print_json
from . import construct_app

STATUSES = ("accepted", "needs_review", "rejected", "refining")


@construct_app.command("audit-gates")
def audit_gates_cmd(
    status: str | None = typer.Option(None, "--status", help="Audit the stored triplets of "
                                      "this status (accepted, needs_review, rejected)."),
    file: Path | None = typer.Option(None, "--file", help="Audit the triplets of this file "
                                     "(.jsonl/.json/.parquet with id, query, thought, answer)."),
    variants: str = typer.Option("all", "--variants", help="Variant kinds, comma-separated, or "
                                 "all: prompt_of_another_text, reasoning_of_another_text, "
                                 "prompt_copies_text, prompt_of_guidelines, reasoning_as_json, "
                                 "generic_reasoning, shuffled_text, truncated_reasoning."),
    triplets: int | None = typer.Option(None, "--triplets", help="Use only the first N "
                                        "triplets."),
    seed: int = typer.Option(0, help="Seed of the variants and of the bootstrap CIs."),
    page: Path | None = typer.Option(None, "--page", help="Write the report as an HTML page "
                                     "(the plot embedded) here."),
    plot: Path | None = typer.Option(None, "--plot", help="Write the AUC plot (PNG) here."),
    write_variants: Path | None = typer.Option(None, "--write-variants", help="Also write the "
                                               "variant rows (.jsonl), e.g. for construct gate."),
    db: DbOpt = Path(DEFAULT_DB),
    config: Path | None = typer.Option(None, help="YAML with ConstructConfig fields "
                                       "(thresholds, checks, score_rule)."),
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
    limit: int | None = typer.Option(None, help="Judge at most this many pending rows (the "
                                     "report covers what is judged)."),
    lang: str | None = typer.Option(None, help="Language of the instructions: zh or en."),
    score_rule: str | None = typer.Option(None, help="argmax or expected (default: config)."),
    log_calls: bool = typer.Option(False, help="Print one line per LLM answer."),
    timeout: TimeoutOpt = 300.0,
    max_failures: MaxFailuresOpt = 10,
    give_up_after: GiveUpAfterOpt = 300.0,
    as_json: JsonOpt = False,
) -> None:
    """Can the gate tell a good triplet from a bad one with this model? Builds counterfactual
    variants of the given triplets (the prompt or reasoning of another text, a prompt copying
    the text or made of the guidelines, a reasoning as JSON, generic or cut off, the text's
    sentences shuffled) and runs the gate of `construct gate` on originals and variants. Per
    variant kind: the share caught and by which check or score, the AUC of the six-score sum
    original against variant with a bootstrap CI (integer and expected scores), and a verdict
    line; and the originals' false-reject rate. Cached and resumable. --json: the report
    (schema in docs/gates.md).

    Examples:
      coig-writer construct audit-gates --file triplets.jsonl --page audit.html
      coig-writer construct audit-gates --status accepted --variants shuffled_text,generic_reasoning --json
    """
    from ...construct.audit import Audit, items_of_store
    from ...construct.config import ConstructConfig
    from ...construct.gate_job import read_gate_items
    from ...construct.variants import check_request, parse_kinds
    from ...executors.ray_executor import RayUnavailable
    from ...executors.run import run_job
    from ...llm import Accounting, CachedBackend, LLMError

    if (status is None) == (file is None):
        raise fail("give one of --status or --file")
    if status is not None and status not in STATUSES:
        raise fail(f"--status must be one of {', '.join(STATUSES)}, got {status!r}")
    if file is not None:
        checked_input(file)
    if executor not in ("local", "ray"):
        raise fail(f"--executor must be local or ray, got {executor!r}")
    if triplets is not None and triplets < 1:
        raise fail("--triplets must be at least 1")
    if write_variants is not None and write_variants.suffix not in (".jsonl", ".parquet"):
        raise fail(f"--write-variants {write_variants}: choose a .jsonl or .parquet file name")
    try:
        kinds = parse_kinds(variants)
        cfg = ConstructConfig.load(config, lang=lang, score_rule=score_rule)
    except (ValueError, OSError) as e:
        raise fail(str(e)) from None
    spec = backend_spec(backend, model, base_url, api_key_env, concurrency, endpoints=endpoints,
                        json_schema=cfg.structured_output,
                        policy=policy_spec(timeout, max_failures, give_up_after))
    writable_places(db, executor)
    with Store(db) as store:
        if file is not None:
            originals, bad = read_gate_items(file)
            for q in bad:
                store.corpus.quarantine(q)
            print_quarantined(bad)
            source = {"file": str(file), "quarantined": len(bad)}
        else:
            originals, left = items_of_store(store, status or "")
            source = {"db": str(db), "status": status, "left_out": left}
        originals = originals[:triplets] if triplets else originals
        if not originals:
            raise fail(f"{file or db} holds no triplet the gate can judge"
                       + ("" if file else f" with status {status}"))
        try:
            check_request(originals, kinds)
        except ValueError as e:
            raise fail(str(e)) from None
        llm = CachedBackend(build_or_fail(spec), store, accounting=Accounting())
        if log_calls:
            llm.listeners.append(call_logger())
        run_id = store.runs.start_run("audit-gates", {**source, "triplets": len(originals),
                                                      "variants": kinds, "seed": seed,
                                                      "config": cfg.model_dump(),
                                                      "model": llm.model_id})
        audit = Audit(store, llm, cfg, originals, kinds, seed, run_id=run_id)
        with progress_bar() as bar:
            task = bar.add_task("audit", total=audit.job.count_pending(limit))
            try:
                outcome, _ = run_job(store, audit.job, llm, executor=executor,
                                     backend_spec=spec, concurrency=concurrency,
                                     workers=workers, shard_size=shard_size,
                                     address=ray_address, limit=limit,
                                     on_item=lambda _label: bar.advance(task))
            except (RayUnavailable, LLMError) as e:
                raise fail(str(e)) from None
        report = audit.report(input={**source, "triplets": len(originals)}, model=llm.model_id,
                              errors=outcome.errors, stopped=outcome.stopped or None,
                              accounting=llm.accounting.summary())
        store.runs.finish_run(run_id, {k: v for k, v in report.items() if k != "rows"})
    write_outputs(report, audit, page, plot, write_variants)
    if as_json:
        print_json(report)
    else:
        print_report(report)
        for what, path in (("page", page), ("plot", plot), ("variants", write_variants)):
            if path is not None:
                console.print(f"{what}: {path}", markup=False)
    for key, e in outcome.errors.items():
        warn("failed", f"{key}: {e} (rerun to retry)", "red")
    print_stopped(outcome.stopped, report["pending"], "rows")
    if outcome.errors or outcome.stopped:
        raise typer.Exit(1)


def write_outputs(report: dict, audit, page: Path | None, plot: Path | None,
                  variants: Path | None) -> None:
    """The variant rows, the plot and the page, where asked for."""
    if variants is not None:
        from ...dataset.io import write_rows

        write_rows([v.row() for v in audit.variants], variants)
    if plot is None and page is None:
        return
    from ...construct.audit_page import plot_png, write_page

    png = plot_png(report)
    if plot is not None:
        plot.parent.mkdir(parents=True, exist_ok=True)
        plot.write_bytes(png)
    if page is not None:
        write_page(report, page, png)


def print_report(report: dict) -> None:
    """The per-variant table, the originals and the verdict lines, for a person."""
    from rich.table import Table

    from ...construct.audit_page import VARIANT_HEADER, counts_text, variant_rows

    o = report["originals"]
    fr = o["false_reject_rate"]
    console.print(f"originals: {o['judged']} judged, {o['not_accepted']} not accepted "
                  f"(false-reject rate {'–' if fr is None else f'{fr:.0%}'}; "
                  f"{counts_text(o['not_accepted_by'])}); model {report.get('model')}, score rule "
                  f"{report['score_rule']}", markup=False, highlight=False)
    table = Table(title=f"variants (AUC: six-score sum, original vs variant; CI: "
                  f"{report['ci']['method']})")
    for c in VARIANT_HEADER:
        table.add_column(c, justify="left" if c in ("variant", "seen by", "by") else "right")
    for row in variant_rows(report, top=3):
        table.add_row(*map(str, row))
    console.print(table)
    for v in report["variants"]:
        console.print(f"- {v['verdict']}", markup=False, highlight=False)
        for s in v["skipped"]:
            console.print(f"  not made of {s['of']}: {s['why']}", markup=False, highlight=False)
    if report.get("accounting"):
        console.print(accounting_table(report["accounting"]))
