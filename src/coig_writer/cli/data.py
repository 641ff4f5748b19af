"""`data`: export, import, statistics, usefulness distribution, publishing, decontamination
against the eval sets and preference pairs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..store import DEFAULT_DB, Store
from .common import (
    check_contamination,
    checked_input,
    console,
    fail,
    import_file,
    read_store,
    warn,
)
from .options import (
    DatasetNameOpt,
    DbOpt,
    DecontamSetsOpt,
    ExcludeOpt,
    GroupByOpt,
    JsonOpt,
    MinGainOpt,
    NamesLangOpt,
    NoDecontamOpt,
    OutFileOpt,
    ReasoningOpt,
    ReviewedOpt,
    ScorerFilterOpt,
    StatusOpt,
    TripletFileOpt,
)
from .summaries import print_json

data_app = typer.Typer(help="Export, import and describe triplet datasets.", no_args_is_help=True)


@data_app.command("export")
def export_cmd(
    out: Annotated[Path, typer.Argument(help="Output .jsonl or .parquet file.")],
    db: DbOpt = Path(DEFAULT_DB),
    status: StatusOpt = "accepted",
    full: bool = typer.Option(False, help="Add provenance, scores, status and template hashes."),
    reviewed: ReviewedOpt = False,
    exclude_contaminated: ExcludeOpt = False,
    decontam_sets: DecontamSetsOpt = None,
) -> None:
    """Write triplets in the released COIG-Writer format (id, query, thought, answer).

    Example: coig-writer data export out/cw.parquet --status accepted --reviewed --exclude-contaminated
    """
    from ..dataset.io import triplet_row, write_rows

    with read_store(db) as store:
        keep = reviewed_ids(store) if reviewed else None
        chosen = [t for t in store.construct.iter_triplets(None if status == "all" else status)
                  if keep is None or t.id in keep]
        if exclude_contaminated:
            chosen, _ = check_contamination(chosen, decontam_sets, True, store)
        rows = (triplet_row(t, full) for t in chosen)
        try:
            n = write_rows(rows, out)
        except ValueError as e:
            raise fail(str(e)) from None
    console.print(f"wrote {n} triplets to {out}")


def reviewed_ids(store: Store) -> set[str]:
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
    from ..dataset.io import import_triplets

    import_file(db, path, import_triplets, "triplets")


@data_app.command("stats")
def stats_cmd(
    db: DbOpt = Path(DEFAULT_DB),
    file: TripletFileOpt = None,
    by: GroupByOpt = "category",
    status: StatusOpt = "all",
    lang: NamesLangOpt = "en",
    as_json: JsonOpt = False,
) -> None:
    """Count, share and min/mean/max characters of prompt, reasoning and text per group.

    Example: coig-writer data stats --by genre --lang zh
    """
    from ..dataset.io import iter_triplet_rows
    from ..dataset.stats import group_stats

    acceptance = None
    if file:
        triplets = [t for *_, t, _, _ in iter_triplet_rows(checked_input(file)) if t is not None]
    else:
        from ..review.service import acceptance_counts, load_policy

        with read_store(db) as store:
            triplets = list(store.construct.iter_triplets(None if status == "all" else status))
            acceptance = acceptance_counts(store, load_policy(store))
    rows, total = group_stats(triplets, by=by, lang=lang)
    if as_json:
        print_json({"by": by, "groups": [dataclasses.asdict(r) for r in rows],
                    "total": dataclasses.asdict(total), "acceptance": acceptance})
        return
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
def genres_cmd(lang: NamesLangOpt = "zh") -> None:
    """Print the genre taxonomy (7 categories and their genres)."""
    from ..genres import load_taxonomy

    tax = load_taxonomy()
    for c in tax.categories:
        console.print(f"[bold]{c.key}[/bold] {getattr(c, lang)} (paper: {c.paper_count})")
        for g in c.genres:
            console.print(f"  {g.key:<20} {getattr(g, lang)}")


@data_app.command("usefulness")
def usefulness_stats_cmd(
    db: DbOpt = Path(DEFAULT_DB),
    by: GroupByOpt = "genre",
    scorer: ScorerFilterOpt = None,
    min_gain: MinGainOpt = None,
) -> None:
    """Distribution of usefulness gains per genre (or category): mean, median, min, max gain,
    gain over the control reasoning, share positive.

    Example: coig-writer data usefulness --by category --min-gain 0.05
    """
    from ..construct.usefulness import distribution

    with read_store(db) as store:
        rows = store.usefulness.usefulness_rows(scorer)
    if not rows:
        raise fail(f"{db} holds no usefulness scores; run `coig-writer construct usefulness`")
    table = Table(title=f"usefulness of {len({r['triplet_id'] for r in rows})} triplets by {by}")
    cols = ["group", "n", "mean gain", "median", "min", "max", "vs control", "nll own", "gain>0"]
    if min_gain is not None:
        cols.append(f"<{min_gain}")
    for c in cols:
        table.add_column(c, justify="left" if c == "group" else "right")
    for d in distribution(rows, by=by, min_gain=min_gain):
        cells = [d["group"], str(d["count"]), *(f"{d[k]:+.3f}" for k in
                 ("mean_gain", "median_gain", "min_gain", "max_gain")),
                 "n/a" if d["mean_gain_vs_control"] is None else f"{d['mean_gain_vs_control']:+.3f}",
                 f"{d['mean_nll_own']:.3f}", f"{d['positive']:.0%}"]
        if min_gain is not None:
            cells.append(f"{d['below_min']:.0%}")
        table.add_row(*cells)
    console.print(table)


@data_app.command("publish")
def publish_cmd(
    out: Annotated[Path, typer.Argument(help="Output folder (Parquet shards + README.md).")],
    db: DbOpt = Path(DEFAULT_DB),
    status: StatusOpt = "accepted",
    reviewed: ReviewedOpt = False,
    reviewers: int | None = typer.Option(None, help="Reviewers an item needs (default: the "
                                                    "review app's saved policy, k=2)."),
    shard_rows: int = typer.Option(10_000, help="Rows per Parquet shard."),
    license: str | None = typer.Option(None, help="Licence id for the card (default: the rows' "
                                                  "single licence, else other)."),
    name: DatasetNameOpt = None,
    exclude_contaminated: ExcludeOpt = False,
    decontam_sets: DecontamSetsOpt = None,
    no_decontam: NoDecontamOpt = False,
) -> None:
    """Write a publishable dataset: data/train-*.parquet with {id, query, thought, answer} and
    optional columns, plus a README.md dataset card computed from the store.

    Example: coig-writer data publish release/ --reviewed && python -c
    "import datasets; print(datasets.load_dataset('release'))"
    """
    from ..dataset.decontaminate import DEFAULT_SETS
    from ..dataset.publish import PublishOptions, publish

    opts = PublishOptions(status=None if status == "all" else status, reviewed=reviewed,
                          shard_rows=shard_rows, license=license, policy_k=reviewers,
                          decontam_sets=() if no_decontam else tuple(decontam_sets or DEFAULT_SETS),
                          exclude_contaminated=exclude_contaminated)
    if name:
        opts.name = name
    with read_store(db) as store:
        try:
            rep = publish(store, out, opts)
        except ValueError as e:
            raise fail(str(e)) from None
    if rep.decontamination:
        d = rep.decontamination.summary(exclude_contaminated)
        for k, why in d["unavailable"].items():
            warn("contamination check skipped set", f"{k}: {why}")
        console.print(f"contamination check: {d['contaminated']} of {d['checked']} triplets share "
                      f"an n-gram with {sum(d['sets'].values())} eval prompts"
                      + (f", {d['excluded']} excluded" if d["excluded"] else "") + ".")
    console.print(f"wrote {rep.rows} triplets in {len(rep.shards)} shard(s) and {rep.card}")


@data_app.command("decontaminate")
def decontaminate_cmd(
    db: DbOpt = Path(DEFAULT_DB),
    sets: DecontamSetsOpt = None,
    file: TripletFileOpt = None,
    status: StatusOpt = "all",
    zh_n: int = typer.Option(13, help="Character n-gram size for Chinese characters."),
    en_n: int = typer.Option(8, help="Word n-gram size for other words."),
    out: OutFileOpt = None,
    as_json: JsonOpt = False,
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
    reasoning: ReasoningOpt = "think",
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
