"""`construct audit-gates`: the gate on real triplets and on counterfactual variants of them."""

from __future__ import annotations

from pathlib import Path

import typer

from ...store import DEFAULT_DB, Store
from ..common import (
    checked_input,
    console,
    fail,
    writable_places,
)
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
    SeedOpt,
    ShardSizeOpt,
    TimeoutOpt,
    TripletFileOpt,
    WorkersOpt,
)
from ..summaries import accounting_table, print_json
from . import construct_app
from .gate import exit_if_unfinished, gate_specs, read_quarantining
from .options import AuditStatusOpt, FirstTripletsOpt, ScoreRuleOpt

STATUSES = ("accepted", "needs_review", "rejected", "refining")


@construct_app.command("audit-gates")
def audit_gates_cmd(
    status: AuditStatusOpt = None,
    file: TripletFileOpt = None,
    variants: str = typer.Option("all", "--variants", help="Variant kinds, comma-separated, or "
                                 "all: prompt_of_another_text, reasoning_of_another_text, "
                                 "prompt_copies_text, prompt_of_guidelines, reasoning_as_json, "
                                 "generic_reasoning, shuffled_text, truncated_reasoning."),
    triplets: FirstTripletsOpt = None,
    seed: SeedOpt = 0,
    page: Path | None = typer.Option(None, "--page", help="Write the report as an HTML page "
                                     "(the plot embedded) here."),
    plot: Path | None = typer.Option(None, "--plot", help="Write the AUC plot (PNG) here."),
    write_variants: Path | None = typer.Option(None, "--write-variants", help="Also write the "
                                               "variant rows (.jsonl), e.g. for construct gate."),
    db: DbOpt = Path(DEFAULT_DB),
    config: ConfigOpt = None,
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
    from ...construct.variants import check_request, parse_kinds
    from ...executors.runs import RunBook, run_recorded

    opts = locals()
    if (status is None) == (file is None):
        raise fail("give one of --status or --file")
    if status is not None and status not in STATUSES:
        raise fail(f"--status must be one of {', '.join(STATUSES)}, got {status!r}")
    if file is not None:
        checked_input(file)
    if triplets is not None and triplets < 1:
        raise fail("--triplets must be at least 1")
    if write_variants is not None and write_variants.suffix not in (".jsonl", ".parquet"):
        raise fail(f"--write-variants {write_variants}: choose a .jsonl or .parquet file name")
    try:
        kinds = parse_kinds(variants)
    except ValueError as e:
        raise fail(str(e)) from None
    cfg, spec, ex = gate_specs(opts)
    writable_places(db, ex.kind)
    with Store(db) as store:
        if file is not None:
            originals, bad = read_quarantining(store, file)
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
        llm = open_llm(store, spec, prices, log_calls)
        info = {**source, "triplets": len(originals), "variants": kinds, "seed": seed,
                "config": cfg.model_dump(), "model": llm.model_id}
        audit = Audit(store, llm, cfg, originals, kinds, seed)
        book = RunBook(store, "audit-gates", info)
        with watching("audit") as watch:
            run = run_recorded(audit.job, llm, book, ex, spec, limit=limit, watch=watch)
        outcome = run.outcome
        report = audit.report(input={**source, "triplets": len(originals)}, model=llm.model_id,
                              errors=outcome.errors, stopped=outcome.stopped or None,
                              accounting=run.accounting)
        store.runs.finish_run(run.run_id, {**run.record(),
                                           **{k: v for k, v in report.items() if k != "rows"}})
    write_outputs(report, audit, page, plot, write_variants)
    if as_json:
        print_json(report)
    else:
        print_report(report)
        for what, path in (("page", page), ("plot", plot), ("variants", write_variants)):
            if path is not None:
                console.print(f"{what}: {path}", markup=False)
    exit_if_unfinished(outcome.errors, outcome.stopped, report["pending"])


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
