"""Training commands: run SFT at any scale, plan memory and time, build a tiny model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from .common import console, err, fail
from .options import (
    ExecutorOpt,
    JsonOpt,
    RayAddressOpt,
    TrainConfigOpt,
    TrainModelOpt,
    TrainStepsOpt,
    TrainWorkersOpt,
)

train_app = typer.Typer(help="Supervised fine-tuning with TRL (one process, torchrun or Ray Train).",
                        no_args_is_help=True)

STRATEGIES = ("auto", "ddp", "fsdp2", "zero3", "zero2")


@train_app.command("tiny-model")
def train_tiny_cmd(out: Path = typer.Argument(Path("out/tiny-qwen2"))) -> None:
    """Build a tiny random-weight Qwen2 model with a real Qwen tokenizer (offline), for CPU
    smoke runs of `coig-writer train run`.

    Example: coig-writer train tiny-model out/tiny-qwen2
    """
    from ..train.tiny import build_tiny_model

    console.print(f"tiny model in {build_tiny_model(out)}")


def _log_line(row: dict[str, Any]) -> None:
    if "loss" not in row:
        return
    parts = [f"step {row['step']}"]
    for key, fmt in (("loss", "loss {:.4f}"), ("grad_norm", "grad norm {:.3g}"),
                     ("learning_rate", "lr {:.3g}"), ("tokens_per_s", "{:,.0f} tokens/s"),
                     ("tokens_per_s_per_device", "{:,.0f}/device"), ("mfu", "MFU {:.1%}"),
                     ("peak_memory_gib", "peak {:.2f} GiB"), ("step_time_s", "{:.2f} s/step")):
        if row.get(key) is not None:
            parts.append(fmt.format(row[key]))
    err.print(", ".join(parts))


@train_app.command("run")
def train_run_cmd(
    config: TrainConfigOpt = None,
    model: TrainModelOpt = None,
    data: str | None = typer.Option(None, help="prompt-completion JSONL (overrides)."),
    output_dir: str | None = typer.Option(None),
    lora: bool | None = typer.Option(None, "--lora/--full"),
    epochs: float | None = typer.Option(None),
    max_steps: TrainStepsOpt = None,
    strategy: str | None = typer.Option(None, help="auto | ddp | fsdp2 | zero3 | zero2."),
    optimizer: str | None = typer.Option(None, help="adamw_fused (default) | adamw | adamw_8bit."),
    nproc: int | None = typer.Option(None, help="Processes on this node, launched with torchrun "
                                                "(default: every visible GPU; 1 on CPU)."),
    nnodes: int = typer.Option(1, help="Nodes in the job (run the same command on each)."),
    node_rank: int = typer.Option(0, help="This node's rank (0 .. nnodes-1)."),
    master_addr: str | None = typer.Option(None, help="Address of node rank 0."),
    master_port: int = typer.Option(29500),
    executor: ExecutorOpt = "local",
    workers: TrainWorkersOpt = None,
    ray_address: RayAddressOpt = None,
    storage_path: str | None = typer.Option(None, help="Ray checkpoint storage (default output_dir/ray)."),
    as_json: JsonOpt = False,
) -> None:
    """SFT with TRL (paper defaults: 3 epochs, lr 2e-5, global batch 32, 10% warmup, max
    length 8192, fp32 master weights with bf16 autocast, padding-free batches); resumes from the
    last checkpoint in output_dir. Under an outer torchrun, accelerate launch or srun it joins
    that world instead of launching one. --executor local: one process or torchrun; ray: Ray
    Train. --json prints train_result.json's content.

    Example: coig-writer train run --config out/mix/train.yaml --nproc 8 --strategy zero3
    """
    from ..train.config import TrainConfig
    from ..train.launch import Launch, launch_training
    from ..train.world import TrainError

    if strategy is not None and strategy not in STRATEGIES:
        raise fail(f"--strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if executor not in ("local", "ray"):
        raise fail(f"--executor must be local or ray, got {executor!r}")
    over = {"model": model, "data": data, "output_dir": output_dir, "lora": lora, "epochs": epochs,
            "max_steps": max_steps, "strategy": strategy, "optimizer": optimizer}
    launch = Launch(nproc=nproc, nnodes=nnodes, node_rank=node_rank, master_addr=master_addr,
                    master_port=master_port, executor=executor, workers=workers,
                    ray_address=ray_address, storage_path=storage_path)
    try:
        cfg = (TrainConfig.load(config, **over) if config else
               TrainConfig.model_validate({k: v for k, v in over.items() if v is not None}))
        result = launch_training(cfg, launch, on_log=_log_line, say=lambda s: err.print(s, markup=False))
    except (TrainError, ValueError) as e:
        raise fail(str(e)) from None
    import os

    from ..train.launch import CHILD_ENV
    from ..train.world import detect_world

    if not detect_world().is_main or os.environ.get(CHILD_ENV):
        return
    if as_json:
        console.print_json(json.dumps(result))
        return
    if result.get("global_step") is None:
        console.print(f"node {result.get('node_rank')} done; node rank 0 saves the model")
        return
    tps = result.get("tokens_per_s") or 0
    console.print(f"done: step {result['global_step']}, {tps:,.0f} tokens/s, model in {result['model_dir']}"
                  + (f" (resumed from {result['resumed_from']})" if result.get("resumed_from") else ""))
    console.print(f"serve it: {result['serve_command']}", markup=False)


@train_app.command("plan")
def train_plan_cmd(
    mean_tokens: float = typer.Option(2048, help="Mean tokens per sample (measure: train run prints it)."),
    mfu: float = typer.Option(0.35, help="Model FLOPs utilisation to assume."),
    as_json: JsonOpt = False,
) -> None:
    """Projected memory per device and training time of the paper's five models (Qwen2.5-7B,
    full fine-tuning, 3 epochs, max length 8192) on 1 x H200 and 8 x H100 (ZeRO-3).

    Example: coig-writer train plan --mean-tokens 1500 --mfu 0.35
    """
    from dataclasses import asdict

    from rich.table import Table

    from ..train.plan import paper_plan

    rows = paper_plan(mean_tokens=mean_tokens, mfu=mfu)
    if as_json:
        console.print_json(json.dumps([asdict(r) | {"fits": r.fits} for r in rows]))
        return
    table = Table(title=f"Qwen2.5-7B, 3 epochs, {mean_tokens:,.0f} tokens/sample, MFU {mfu:.0%}")
    for col in ("mixture", "samples", "devices", "strategy", "optimizer", "memory/device", "fits", "hours"):
        table.add_column(col)
    for r in rows:
        table.add_row(r.name, f"{r.samples:,}", f"{r.devices} x {r.device_gib:.0f} GiB", r.strategy,
                      r.optimizer, f"{r.memory_gib:.1f} GiB", "yes" if r.fits else "no", f"{r.hours:.2f}")
    console.print(table)
