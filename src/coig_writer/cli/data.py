"""Dataset export, import and statistics commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..store import DEFAULT_DB, Store
from .common import (
    DbOpt,
    console,
    fail,
    import_file,
    warn,
)

data_app = typer.Typer(help="Export, import and describe triplet datasets.", no_args_is_help=True)

DecontamSetsOpt = Annotated[list[str] | None, typer.Option(
    "--decontam-set", help="Eval sets the contamination check uses: bundled-zh, bundled-en, "
                           "writingbench, arena-hard-creative, store, or a prompt file; repeat "
                           "(default: the four named sets).")]
ExcludeOpt = Annotated[bool, typer.Option(
    "--exclude-contaminated", help="Drop items sharing an n-gram with an eval prompt.")]


def check_contamination(triplets, sets: list[str] | None, exclude: bool, store=None,
                        zh_n: int = 13, en_n: int = 8):
    """Run the n-gram check on triplets (a list, or any iterable when not excluding), say what
    it found; (kept triplets, report)."""
    from ..dataset.decontaminate import DEFAULT_SETS, NgramConfig, decontaminate, triplet_items

    try:
        cfg = NgramConfig(zh_n, en_n)
    except ValueError as e:
        raise fail(str(e)) from None
    rep = decontaminate(triplet_items(triplets), sets or DEFAULT_SETS, cfg, store)
    for name, why in rep.unavailable.items():
        warn("contamination check skipped set", f"{name}: {why}")
    bad = rep.contaminated
    by_set = ", ".join(f"{k} {v}" for k, v in rep.by_set().items())
    console.print(f"contamination check: {rep.checked} triplets against "
                  f"{sum(rep.sets.values())} eval prompts ({', '.join(rep.sets) or 'no set'}); "
                  f"{len(bad)} share an n-gram" + (f" ({by_set})" if bad else "")
                  + (f", {len(bad)} excluded" if exclude and bad else "")
                  + ("" if exclude or not bad else "; --exclude-contaminated drops them") + ".")
    kept = [t for t in triplets if t.id not in bad] if exclude else triplets
    return kept, rep


@data_app.command("export")
def export_cmd(
    out: Annotated[Path, typer.Argument(help="Output .jsonl or .parquet file.")],
    db: DbOpt = Path(DEFAULT_DB),
    status: str = typer.Option("accepted", help="accepted, needs_review, rejected or all."),
    full: bool = typer.Option(False, help="Add provenance, scores, status and template hashes."),
    reviewed: Annotated[bool, typer.Option(help="Only triplets that k human reviewers accepted "
                                                "(with the policy the review app last ran "
                                                "with).")] = False,
    exclude_contaminated: ExcludeOpt = False,
    decontam_sets: DecontamSetsOpt = None,
) -> None:
    """Write triplets in the released COIG-Writer format (id, query, thought, answer).

    Example: coig-writer data export out/cw.parquet --status accepted --reviewed --exclude-contaminated
    """
    from ..dataset_io import triplet_row, write_rows

    with Store(db) as store:
        keep = _reviewed_ids(store) if reviewed else None
        trips = [t for t in store.iter_triplets(None if status == "all" else status)
                 if keep is None or t.id in keep]
        if exclude_contaminated:
            trips, _ = check_contamination(trips, decontam_sets, True, store)
        rows = (triplet_row(t, full) for t in trips)
        try:
            n = write_rows(rows, out)
        except ValueError as e:
            raise fail(str(e)) from None
    console.print(f"wrote {n} triplets to {out}")


def _reviewed_ids(store: Store) -> set[str]:
    """Ids k reviewers accepted, judged with the policy the review app last ran with."""
    from ..review.service import human_accepted_ids, load_policy

    return human_accepted_ids(store, load_policy(store))


@data_app.command("import")
def import_cmd(
    path: Annotated[Path, typer.Argument(help="A .jsonl, .json or .parquet triplet file.")],
    db: DbOpt = Path(DEFAULT_DB),
) -> None:
    """Load triplets (e.g. the released COIG-Writer data) into the store.

    Example: coig-writer data import COIG-Writer.jsonl
    """
    from ..dataset_io import import_triplets

    import_file(db, path, import_triplets, "triplets")


@data_app.command("stats")
def stats_cmd(
    db: DbOpt = Path(DEFAULT_DB),
    file: Path | None = typer.Option(None, help="Describe a triplet file instead of the store."),
    by: str = typer.Option("category", help="category or genre"),
    status: str = typer.Option("all", help="Triplet status to include, or all."),
    lang: str = typer.Option("en", help="Names in zh or en."),
) -> None:
    """Count, share and min/mean/max characters of prompt, reasoning and text per group.

    Example: coig-writer data stats --by genre --lang zh
    """
    from ..analysis.stats import group_stats
    from ..dataset_io import iter_triplet_rows

    acceptance = None
    if file:
        triplets = [t for *_, t, _, _ in iter_triplet_rows(file) if t is not None]
    else:
        from ..review.service import acceptance_counts, load_policy

        with Store(db) as store:
            triplets = list(store.iter_triplets(None if status == "all" else status))
            acceptance = acceptance_counts(store, load_policy(store))
    rows, total = group_stats(triplets, by=by, lang=lang)
    table = Table(title=f"{total.count} triplets by {by}")
    for col in ("group", "count", "share", "prompt min/mean/max", "reasoning min/mean/max",
                "text min/mean/max"):
        table.add_column(col, justify="left" if col == "group" else "right")
    for r in [*rows, total]:
        table.add_row(r.name, str(r.count), f"{r.share:.1%}",
                      *(f"{s.min:,} / {s.mean:,.0f} / {s.max:,}" for s in r.lengths.values()),
                      end_section=r is rows[-1] if rows else False)
    console.print(table)
    if acceptance:
        console.print(f"pipeline accepted {acceptance.get('pipeline_accepted', 0)}, human "
                      f"accepted {acceptance.get('human_accepted', 0)} (both "
                      f"{acceptance.get('both_accepted', 0)}); review status: " + ", ".join(
                          f"{k.removeprefix('review_')} {v}" for k, v in sorted(acceptance.items())
                          if k.startswith("review_")))


@data_app.command("genres")
def genres_cmd(lang: str = typer.Option("zh", help="zh or en")) -> None:
    """Print the genre taxonomy (7 categories and their genres)."""
    from ..genres import load_taxonomy

    tax = load_taxonomy()
    for c in tax.categories:
        console.print(f"[bold]{c.key}[/bold] {getattr(c, lang)} (paper: {c.paper_count})")
        for g in c.genres:
            console.print(f"  {g.key:<20} {getattr(g, lang)}")


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

    from ..dataset_io import iter_triplet_rows

    with Store(db) as store:
        if file:
            if not file.exists():
                raise fail(f"no such file: {file}")
            trips = (t for *_, t, _, _ in iter_triplet_rows(file) if t is not None)
        else:
            trips = store.iter_triplets(None if status == "all" else status)
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
