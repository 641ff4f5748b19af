"""Mixture and training commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..store import DEFAULT_DB, Store
from .common import (
    DbOpt,
    console,
    err,
    fail,
    print_quarantined,
)

mix_app = typer.Typer(help="SFT mixtures at exact ratios, rendering and exports.", no_args_is_help=True)
train_app = typer.Typer(help="Supervised fine-tuning with TRL.", no_args_is_help=True)


@mix_app.command("build")
def mix_build_cmd(
    general_files: list[Path] = typer.Option(
        [], "--general-file", help="General dataset (.jsonl/.json/.parquet; chat or "
                                   "prompt/response). Repeat for several."),
    out: Path = typer.Option(Path("out/mix"), help="Output folder."),
    db: DbOpt = Path(DEFAULT_DB),
    triplets: Path | None = typer.Option(None, help="Triplet file instead of the store's accepted ones."),
    reviewed: Annotated[bool, typer.Option(
        help="Only store triplets that k human reviewers accepted.")] = False,
    preset: str | None = typer.Option(None, help="CW, CW+2k, CW+10k, CW+20k or G (the paper's)."),
    ratio: str | None = typer.Option(None, help="creative:general, e.g. 1:12."),
    creative: int | None = typer.Option(None, help="Number of creative samples (default all)."),
    general: int | None = typer.Option(None, help="Number of general samples."),
    lang_balance: str | None = typer.Option(None, help="General split by language, e.g. zh=1,en=1."),
    stratify_genre: bool = typer.Option(False, help="Keep genre shares when subsampling creative."),
    seed: int = typer.Option(0),
    reasoning: str = typer.Option("think", help="think: reasoning in <think>; drop: ablation."),
    name: str | None = typer.Option(None, help="Mixture name (default: preset or 'mixture')."),
    tokenizer: Path | None = typer.Option(None, help="Check the chat template and loss mask "
                                                     "with this tokenizer and print a sample."),
) -> None:
    """Build a mixture with a manifest of every sample id; export for TRL and LLaMA-Factory.

    Example: coig-writer mix build --general-file zh.jsonl --general-file en.jsonl --ratio 1:12
    --lang-balance zh=1,en=1
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
    if triplets:
        trips = [t for *_, t, _, _ in iter_triplet_rows(triplets) if t is not None]
    else:
        with Store(db) as store:
            trips = list(store.construct.iter_triplets("accepted"))
            if reviewed:
                from .data import _reviewed_ids

                keep = _reviewed_ids(store)
                trips = [t for t in trips if t.id in keep]
    pool_c = from_triplets(trips)
    pool_g = []
    for f in general_files:
        if not f.exists():
            raise fail(f"no such file: {f}")
        good, bad = read_general(f)
        print_quarantined(bad, "skipped malformed row")
        pool_g += good
    try:
        mix = build_mixture(pool_c, pool_g, spec)
    except MixtureError as e:
        raise fail(str(e)) from None
    if tokenizer:
        from transformers import AutoTokenizer

        from ..mix.render import TemplateCheckError, check_template

        tok = AutoTokenizer.from_pretrained(str(tokenizer))
        try:
            checks = [check_template(tok, s, reasoning) for s in mix.samples[:50]]
        except TemplateCheckError as e:
            raise fail(f"{tokenizer}: {e}") from None
        console.print(checks[0].show(), markup=False)
    files = export_mixture(mix, out, reasoning)
    console.print(f"{spec.name}: {mix.counts} -> {out} (manifest {files['manifest'].name}, "
                  f"TRL {files['trl'].name}, LLaMA-Factory {files['llamafactory'].name})")


@train_app.command("tiny-model")
def train_tiny_cmd(out: Path = typer.Argument(Path("out/tiny-qwen2"))) -> None:
    """Build a tiny random-weight Qwen2 model with a real Qwen tokenizer (offline), for CPU
    smoke runs of `coig-writer train run`."""
    from ..train.tiny import build_tiny_model

    console.print(f"tiny model in {build_tiny_model(out)}")


@train_app.command("run")
def train_run_cmd(
    config: Path | None = typer.Option(None, help="YAML TrainConfig (e.g. the mix's train.yaml)."),
    model: str | None = typer.Option(None, help="Model folder (overrides the config)."),
    data: str | None = typer.Option(None, help="prompt-completion JSONL (overrides)."),
    output_dir: str | None = typer.Option(None),
    lora: bool | None = typer.Option(None, "--lora/--full"),
    epochs: float | None = typer.Option(None),
    max_steps: int | None = typer.Option(None),
) -> None:
    """SFT with TRL (paper defaults: 3 epochs, lr 2e-5, global batch 32, 10% warmup, max
    length 8192); resumes from the last checkpoint in output_dir.

    Example: coig-writer train run --config out/mix/train.yaml --model out/tiny-qwen2 --max-steps 20
    """
    from ..train.config import TrainConfig
    from ..train.launcher import TrainError, train

    over = {"model": model, "data": data, "output_dir": output_dir, "lora": lora,
            "epochs": epochs, "max_steps": max_steps}
    try:
        cfg = (TrainConfig.load(config, **over) if config else
               TrainConfig.model_validate({k: v for k, v in over.items() if v is not None}))
        result = train(cfg, on_log=lambda row: err.print(
            f"step {row['step']}: " + ", ".join(f"{k}={v:.4g}" for k, v in row.items()
                                                if k in ("loss", "learning_rate", "epoch"))))
    except (TrainError, ValueError) as e:
        raise fail(str(e)) from None
    console.print(f"done: step {result['global_step']}, model in {result['model_dir']}"
                  + (f" (resumed from {result['resumed_from']})" if result["resumed_from"] else ""))
