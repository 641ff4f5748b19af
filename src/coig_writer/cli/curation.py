"""`data decontaminate` and `data export-preferences`: keeping eval prompts out of the data,
and getting preference pairs out of it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..store import DEFAULT_DB, Store
from .common import DbOpt, DecontamSetsOpt, check_contamination, console, fail
from .data import data_app


@data_app.command("decontaminate")
def decontaminate_cmd(
    db: DbOpt = Path(DEFAULT_DB),
    sets: DecontamSetsOpt = None,
    file: Path | None = typer.Option(None, help="Check a triplet file instead of the store."),
    status: str = typer.Option("all", help="Triplet status to check, or all."),
    zh_n: int = typer.Option(13, help="Character n-gram size for Chinese characters."),
    en_n: int = typer.Option(8, help="Word n-gram size for other words."),
    out: Path | None = typer.Option(None, help="Write every flag to this .jsonl file."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Find triplets whose prompt or text shares an n-gram (13 Chinese characters, 8 words)
    with a prompt of the eval sets: each flag names the set, prompt id and shared span.

    Example: coig-writer data decontaminate --decontam-set arena-hard-creative --decontam-set my_prompts.jsonl
    """
    import json

    from ..dataset.io import iter_triplet_rows

    with Store(db) as store:
        if file:
            if not file.exists():
                raise fail(f"no such file: {file}")
            trips = (t for *_, t, _, _ in iter_triplet_rows(file) if t is not None)
        else:
            trips = store.construct.iter_triplets(None if status == "all" else status)
        _, rep = check_contamination(trips, sets, False, store, zh_n, en_n)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rep.rows()),
                       encoding="utf-8")
    if as_json:
        console.print_json(json.dumps({**rep.summary(), "flags": rep.rows()}, ensure_ascii=False))
        return
    if rep.flags:
        table = Table(title=f"{len(rep.contaminated)} contaminated triplet(s)")
        for col in ("triplet", "field", "set", "prompt id", "n-grams", "shared span"):
            table.add_column(col, justify="right" if col == "n-grams" else "left",
                             no_wrap=col != "shared span")
        for f in rep.flags:
            span = f.span if len(f.span) <= 80 else f.span[:77] + "..."
            table.add_row(f.item_id, f.field, f.set_name, f.prompt_id, str(f.ngrams), span)
        console.print(table)


@data_app.command("export-preferences")
def export_preferences_cmd(
    out: Annotated[Path, typer.Argument(help="Output .jsonl or .parquet file.")],
    db: DbOpt = Path(DEFAULT_DB),
    fmt: str = typer.Option("dpo", "--format", help="dpo: TRL prompt/chosen/rejected; reward: "
                                                   "chosen/rejected conversations with margin."),
    reasoning: str = typer.Option("think", help="think: reasoning in the <think> slot; drop."),
    refinement: bool = typer.Option(True, help="Pairs from construction/refinement rounds."),
    review: bool = typer.Option(True, help="Pairs from reviewer edits and rejections."),
    judgment: bool = typer.Option(True, help="Pairs from pairwise eval judgments (both orders "
                                             "agreeing)."),
    min_margin: float | None = typer.Option(None, help="Least margin: score-sum gap for "
                                                       "refinement pairs, verdict strength "
                                                       "(1 or 2) for judgments; human review "
                                                       "pairs always pass."),
) -> None:
    """Export preference pairs for DPO or reward models, each with its provenance.

    Example: coig-writer data export-preferences out/prefs.jsonl --no-judgment --min-margin 4
    """
    from ..dataset.preferences import export_preferences

    sources = [n for n, on in (("refinement", refinement), ("review", review),
                               ("judgment", judgment)) if on]
    if not sources:
        raise fail("every source is switched off; keep at least one of --refinement, --review, "
                   "--judgment")
    with Store(db) as store:
        try:
            rep = export_preferences(store, out, fmt, reasoning, sources, min_margin)
        except ValueError as e:
            raise fail(str(e)) from None
    by = ", ".join(f"{k} {v}" for k, v in sorted(rep.by_source.items())) or "none"
    skipped = ", ".join(f"{v} {k}" for k, v in sorted(rep.skipped.items()))
    console.print(f"wrote {rep.written} preference pairs to {out} ({by})"
                  + (f"; skipped {skipped}" if skipped else "") + ".")
