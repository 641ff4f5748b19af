"""Mixture and training commands."""

from __future__ import annotations

import contextlib
from pathlib import Path

import typer

from ..store import DEFAULT_DB, Store
from .common import (
    check_contamination,
    checked_input,
    console,
    fail,
    print_quarantined,
)
from .data import reviewed_ids
from .options import (
    CheckTokenizerOpt,
    DatasetNameOpt,
    DbOpt,
    DecontamSetsOpt,
    ExcludeOpt,
    GeneralFilesOpt,
    MixPresetOpt,
    NoDecontamOpt,
    OutDirOpt,
    ReasoningOpt,
    ReviewedOpt,
    SeedOpt,
    TripletsOpt,
)
from .train import train_app

__all__ = ["mix_app", "train_app"]

mix_app = typer.Typer(help="SFT mixtures at exact ratios, rendering and exports.", no_args_is_help=True)


@mix_app.command("build")
def mix_build_cmd(
    general_files: GeneralFilesOpt = [],  # noqa: B006 - typer copies the default
    out: OutDirOpt = Path("out/mix"),
    db: DbOpt = Path(DEFAULT_DB),
    triplets: TripletsOpt = None,
    reviewed: ReviewedOpt = False,
    preset: MixPresetOpt = None,
    ratio: str | None = typer.Option(None, help="creative:general, e.g. 1:12."),
    creative: int | None = typer.Option(None, help="Number of creative samples (default all)."),
    general: int | None = typer.Option(None, help="Number of general samples."),
    lang_balance: str | None = typer.Option(None, help="General split by language, e.g. zh=1,en=1."),
    stratify_genre: bool = typer.Option(False, help="Keep genre shares when subsampling creative."),
    seed: SeedOpt = 0,
    reasoning: ReasoningOpt = "think",
    name: DatasetNameOpt = None,
    tokenizer: CheckTokenizerOpt = None,
    exclude_contaminated: ExcludeOpt = False,
    decontam_sets: DecontamSetsOpt = None,
    no_decontam: NoDecontamOpt = False,
    gpus: int = typer.Option(1, min=1, help="GPUs LLaMA-Factory will run on: its gradient accumulation "
                                            "is computed so that the global batch stays 32."),
) -> None:
    """Build a mixture with a manifest of every sample id; export for TRL and LLaMA-Factory.

    Example: coig-writer mix build --general-file zh.jsonl --general-file en.jsonl --ratio 1:12
    --lang-balance zh=1,en=1 --exclude-contaminated --gpus 8
    """
    from ..dataset.io import iter_triplet_rows
    from ..mix.builder import PRESETS, MixSpec, MixtureError, build_mixture
    from ..mix.export import export_mixture
    from ..mix.samples import from_triplets, read_general

    if preset:
        if preset not in PRESETS:
            raise fail(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        spec = PRESETS[preset]
        spec = MixSpec(**{**spec.__dict__, "seed": seed, "stratify_genre": stratify_genre})
    else:
        balance = None
        if lang_balance:
            try:
                balance = {k.strip(): float(v) for k, v in
                           (kv.split("=") for kv in lang_balance.split(","))}
            except ValueError:
                raise fail(f"--lang-balance must look like zh=1,en=1, got {lang_balance!r}") from None
        spec = MixSpec(creative=creative, general=general, ratio=ratio, lang_balance=balance,
                       stratify_genre=stratify_genre, seed=seed, name=name or "mixture")
    if name:
        spec.name = name
    for f in [*general_files, *([triplets] if triplets else [])]:
        checked_input(f)  # every file checked before anything is read
    decon = None
    need_store = not triplets or "store" in (decontam_sets or [])
    with Store(db) if need_store else contextlib.nullcontext() as store:
        if triplets:
            trips = [t for *_, t, _, _ in iter_triplet_rows(triplets) if t is not None]
        else:
            trips = list(store.construct.iter_triplets("accepted"))
            if reviewed:
                keep = reviewed_ids(store)
                trips = [t for t in trips if t.id in keep]
        if trips and not no_decontam:
            trips, rep = check_contamination(trips, decontam_sets, exclude_contaminated, store)
            decon = rep.summary(exclude_contaminated)
    pool_c = from_triplets(trips)
    pool_g = []
    for f in general_files:
        good, bad = read_general(f)
        print_quarantined(bad, "skipped malformed row")
        pool_g += good
    try:
        mix = build_mixture(pool_c, pool_g, spec)
    except MixtureError as e:
        raise fail(str(e)) from None
    mix.decontamination = decon
    if tokenizer:
        from transformers import AutoTokenizer

        from ..mix.render import TemplateCheckError, check_template

        tok = AutoTokenizer.from_pretrained(str(tokenizer))
        try:
            checks = [check_template(tok, s, reasoning) for s in mix.samples[:50]]
        except TemplateCheckError as e:
            raise fail(f"{tokenizer}: {e}") from None
        console.print(checks[0].show(), markup=False)
    from ..train.world import TrainError

    try:
        files = export_mixture(mix, out, reasoning, gpus=gpus)
    except TrainError as e:
        raise fail(f"--gpus {gpus}: {e}") from None
    console.print(f"{spec.name}: {mix.counts} -> {out} (manifest {files['manifest'].name}, "
                  f"TRL {files['trl'].name}, LLaMA-Factory {files['llamafactory'].name})")
