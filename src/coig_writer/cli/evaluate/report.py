"""`eval report`: win rates, ratings, diversity, judge checks and warnings as HTML, PNGs and JSON."""

from __future__ import annotations

from pathlib import Path

import typer

from ...store import DEFAULT_DB
from ..common import (
    console,
    fail,
    read_store,
    warn,
)
from ..options import DbOpt, JudgeNameOpt, ModelsOpt, OutDirOpt, SeedOpt
from . import eval_app


@eval_app.command("report")
def eval_report_cmd(
    out: OutDirOpt = Path("out/report"),
    db: DbOpt = Path(DEFAULT_DB),
    source: str = typer.Option("judge", help="judge or human verdicts."),
    judge_name: JudgeNameOpt = None,
    models: ModelsOpt = None,
    rounds: int = typer.Option(1000, help="Bootstrap rounds."),
    seed: SeedOpt = 0,
    baseline: str | None = typer.Option(None, help="Arena-Hard scores against this model "
                                        "(= 50), e.g. gemini-2.0-flash-001."),
) -> None:
    """Rubric scores (bootstrap CIs, paired tests, 0-100 scale), win-rate matrix with CIs, sign
    tests, Bradley-Terry, Arena-Hard scores vs a baseline, length control, per-language and
    per-genre breakdowns, judge bias, published numbers; HTML + PNG + JSON.

    Example: coig-writer eval report --out out/report --source human
    """
    from ...evaluate.analysis import analyze
    from ...evaluate.report import write_report

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
