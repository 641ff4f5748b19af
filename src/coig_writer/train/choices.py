"""Choices made before the model loads: precision, strategy (DDP, FSDP2, DeepSpeed ZeRO),
optimizer, attention kernel; each with a note saying why, recorded in the run config."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from .config import TrainConfig
from .world import TrainError, World


@dataclass
class Setup:
    device: str
    bf16: bool
    dtype: str  # weights (master) dtype
    strategy: str
    optim: str
    attn: str
    liger: bool
    notes: list[str] = field(default_factory=list)
    fsdp_config: dict[str, Any] | None = None
    deepspeed: dict[str, Any] | None = None


def shipped_config(name: str) -> dict[str, Any]:
    """One of the accelerate/DeepSpeed configs shipped in coig_writer/train/configs."""
    return json.loads(resources.files("coig_writer.train").joinpath("configs", name).read_text("utf-8"))


def decoder_layer_classes(model_config: Any) -> list[str]:
    """The decoder-layer class names FSDP wraps, from the architecture's _no_split_modules."""
    import transformers

    names: list[str] = []
    for arch in getattr(model_config, "architectures", None) or []:
        names += list(getattr(getattr(transformers, arch, None), "_no_split_modules", None) or [])
    return names


def fsdp2_config(cfg: TrainConfig, model_config: Any) -> dict[str, Any]:
    """The shipped FSDP2 config for this model: its decoder layers wrapped, activation
    checkpointing done by FSDP (not by the model) when gradient checkpointing is on."""
    fc = shipped_config("fsdp2.json")
    fc["transformer_layer_cls_to_wrap"] = decoder_layer_classes(model_config) or None
    fc["activation_checkpointing"] = cfg.gradient_checkpointing
    return {k: v for k, v in fc.items() if v is not None}


def _fused_adamw_works(device: str) -> bool:
    import torch

    try:
        p = torch.nn.Parameter(torch.zeros(2, device=device))
        p.grad = torch.ones(2, device=device)
        torch.optim.AdamW([p], fused=True).step()
        return True
    except (RuntimeError, TypeError):
        return False


def choose(cfg: TrainConfig, world: World, model_config: Any) -> Setup:
    import torch

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    notes: list[str] = []
    bf16 = cfg.bf16 if cfg.bf16 is not None else (not cuda or torch.cuda.is_bf16_supported())
    if cfg.pure_bf16:
        notes.append("pure_bf16: weights and AdamW states in bf16; updates smaller than bf16's resolution "
                     "are lost (measured: 0.23x the weight movement of fp32 master weights at lr 2e-5)")
    elif bf16:
        notes.append("fp32 master weights, bf16 autocast" + (" (CPU)" if not cuda else ""))
    strategy = cfg.strategy
    if strategy == "auto":
        strategy = "ddp" if world.size > 1 else "single"
    if strategy in ("zero2", "zero3") and importlib.util.find_spec("deepspeed") is None:
        raise TrainError(f"strategy {cfg.strategy} needs DeepSpeed: pip install deepspeed "
                         f"(or use --strategy fsdp2, which needs nothing extra)")
    if strategy in ("zero2", "zero3", "fsdp2") and cfg.lora:
        notes.append("LoRA with a sharded strategy: adapters are sharded with the base weights")
    optim = {"adamw": "adamw_torch", "adamw_fused": "adamw_torch_fused", "adamw_8bit": "adamw_bnb_8bit"}[
        cfg.optimizer]
    if cfg.optimizer == "adamw_8bit" and importlib.util.find_spec("bitsandbytes") is None:
        raise TrainError("optimizer adamw_8bit needs bitsandbytes: pip install bitsandbytes")
    if optim == "adamw_torch_fused" and not _fused_adamw_works(device):
        optim = "adamw_torch"
        notes.append(f"fused AdamW does not run on this {device}; using foreach AdamW")
    attn = cfg.attn_implementation or (
        "flash_attention_2" if cuda and importlib.util.find_spec("flash_attn") else "sdpa")
    liger = cfg.liger if cfg.liger is not None else bool(cuda and importlib.util.find_spec("liger_kernel"))
    notes.append("loss: TRL's chunked LM head (full logits never materialised)"
                 + (", Liger layer kernels" if liger else ""))
    setup = Setup(device=device, bf16=bf16, dtype="bfloat16" if cfg.pure_bf16 else "float32",
                  strategy=strategy, optim=optim, attn=attn, liger=liger, notes=notes)
    if strategy == "fsdp2":
        if not cuda:
            raise TrainError("strategy fsdp2 needs GPUs: accelerate runs FSDP only on accelerators, and "
                             "on CPU it would silently fall back to DDP; use --strategy ddp here")
        setup.fsdp_config = fsdp2_config(cfg, model_config)
    elif strategy in ("zero2", "zero3"):
        setup.deepspeed = shipped_config(f"{strategy}.json")
    return setup
