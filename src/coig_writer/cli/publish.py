"""`data publish`: a folder that `datasets.load_dataset` loads, with a generated dataset card."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..store import DEFAULT_DB, Store
from .common import DbOpt, console, fail, warn
from .data import DecontamSetsOpt, ExcludeOpt, data_app


@data_app.command("publish")
def publish_cmd(
    out: Annotated[Path, typer.Argument(help="Output folder (Parquet shards + README.md).")],
    db: DbOpt = Path(DEFAULT_DB),
    status: str = typer.Option("accepted", help="accepted, needs_review, rejected or all."),
    reviewed: bool = typer.Option(False, help="Only items the reviewers accepted (review "
                                              "policy: every reviewer accepts or edits)."),
    reviewers: int | None = typer.Option(None, help="Reviewers an item needs (default: the "
                                                    "review app's saved policy, k=2)."),
    shard_rows: int = typer.Option(10_000, help="Rows per Parquet shard."),
    license: str | None = typer.Option(None, help="Licence id for the card (default: the rows' "
                                                  "single licence, else other)."),
    name: str | None = typer.Option(None, help="Dataset title in the card."),
    exclude_contaminated: ExcludeOpt = False,
    decontam_sets: DecontamSetsOpt = None,
    no_decontam: bool = typer.Option(False, "--no-decontam-check",
                                     help="Skip the n-gram contamination check."),
) -> None:
    """Write a publishable dataset: data/train-*.parquet with {id, query, thought, answer} and
    optional columns, plus a README.md dataset card computed from the store.

    Example: coig-writer data publish release/ --reviewed && python -c
    "import datasets; print(datasets.load_dataset('release'))"
    """
    from ..dataset.decontaminate import DEFAULT_SETS
    from ..publish import PublishOptions, publish

    opts = PublishOptions(status=None if status == "all" else status, reviewed=reviewed,
                          shard_rows=shard_rows, license=license, policy_k=reviewers,
                          decontam_sets=() if no_decontam else tuple(decontam_sets or DEFAULT_SETS),
                          exclude_contaminated=exclude_contaminated)
    if name:
        opts.name = name
    with Store(db) as store:
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
