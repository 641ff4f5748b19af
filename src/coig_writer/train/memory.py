"""Projected memory per device and checkpoint disk from a model config, before anything loads;
model FLOPs per token for MFU; the peak bf16 FLOP/s of known accelerators."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .world import TrainError

GIB = 1024 ** 3
# dense bf16 peak FLOP/s (no sparsity), from the vendors' data sheets
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "H800": 989e12, "H20": 148e12, "B200": 2250e12,
             "A100": 312e12, "A800": 312e12, "L40S": 362e12, "A6000": 155e12, "4090": 165e12}


def device_peak_flops() -> tuple[str, float | None]:
    """(device name, peak bf16 FLOP/s or None where unknown, e.g. CPUs)."""
    import torch

    if not torch.cuda.is_available():
        return "cpu", None
    name = torch.cuda.get_device_name()
    return name, next((v for k, v in PEAK_BF16.items() if k in name.upper()), None)


def _get(cfg: Any, key: str, default: Any = None) -> Any:
    return cfg.get(key, default) if isinstance(cfg, dict) else getattr(cfg, key, default)


@dataclass(frozen=True)
class Shape:
    vocab: int
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    tied: bool

    @classmethod
    def of(cls, cfg: Any) -> Shape:
        heads = _get(cfg, "num_attention_heads")
        return cls(vocab=_get(cfg, "vocab_size"), hidden=_get(cfg, "hidden_size"),
                   intermediate=_get(cfg, "intermediate_size"), layers=_get(cfg, "num_hidden_layers"),
                   heads=heads, kv_heads=_get(cfg, "num_key_value_heads") or heads,
                   tied=bool(_get(cfg, "tie_word_embeddings", False)))

    @property
    def params(self) -> int:
        h, kv = self.hidden, self.hidden // self.heads * self.kv_heads
        layer = h * h * 2 + h * kv * 2 + h + 2 * kv + 3 * h * self.intermediate + 2 * h
        return self.vocab * h * (1 if self.tied else 2) + self.layers * layer + h

    def flops_per_token(self, seq: int) -> float:
        """Training FLOPs per token: 6 x non-embedding-input parameters + causal attention."""
        dense = self.params - self.vocab * self.hidden * (0 if self.tied else 1)
        return 6 * dense + 6 * self.layers * self.hidden * seq  # 12*L*h*seq/2 (causal)

    def activation_bytes(self, tokens: int, checkpointing: bool) -> float:
        """bf16 activations kept for backward over `tokens` (flash/SDPA attention, chunked loss)."""
        h, kv = self.hidden, self.hidden // self.heads * self.kv_heads
        per_layer = tokens * (8 * h + 2 * kv + 4 * self.intermediate) * 2
        if checkpointing:  # layer inputs kept, one layer recomputed at a time
            return self.layers * tokens * h * 2 + per_layer
        return self.layers * per_layer


@dataclass(frozen=True)
class Projection:
    weights: float
    gradients: float
    optimizer: float
    activations: float
    transient: float  # autocast's bf16 weight copies, DDP buckets, runtime context
    checkpoint_disk: float
    final_disk: float

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.activations + self.transient

    def describe(self) -> str:
        g = [x / GIB for x in (self.weights, self.gradients, self.optimizer, self.activations,
                               self.transient, self.total)]
        return (f"projected memory per device: weights {g[0]:.1f} GiB + gradients {g[1]:.1f} + "
                f"optimizer {g[2]:.1f} + activations {g[3]:.1f} + transient {g[4]:.1f} = {g[5]:.1f} GiB; "
                f"a checkpoint takes {self.checkpoint_disk / GIB:.1f} GiB on disk, "
                f"the bf16 final model {self.final_disk / GIB:.1f} GiB")


def project(shape: Shape, *, world: int, strategy: str, per_device: int, max_length: int,
            checkpointing: bool = True, pure_bf16: bool = False, optimizer: str = "adamw_fused",
            lora: bool = False) -> Projection:
    """Bytes per device. Replicated (single, DDP): fp32 weights and gradients, AdamW states, and a
    bf16 copy of every weight held by autocast. FSDP2: the same states sharded. DeepSpeed bf16:
    bf16 weights and gradients plus fp32 master weights and gradient accumulators (20 B/param),
    sharded by ZeRO-3 (ZeRO-2 keeps the bf16 weights whole)."""
    n = shape.params
    trained = 0.0 if lora else float(n)  # LoRA adapters are well under 1% of n
    wbytes = 2 if pure_bf16 else 4
    opt = 2 if optimizer == "adamw_8bit" else 2 * wbytes
    w = max(1, world)
    transient = 1.5 * GIB  # CUDA context and allocator slack
    if strategy in ("zero3", "zero2"):
        extra = 0 if pure_bf16 else 4  # fp32 master copy / fp32 gradient accumulator
        weights = 2 * n / (w if strategy == "zero3" else 1) + extra * trained / w
        grads, optim = (2 + extra) * trained / w, opt * trained / w
        transient += 2e9 if strategy == "zero3" else 0  # stage3_max_live_parameters in bf16
    else:
        shard = w if strategy == "fsdp2" else 1
        weights = n * (2 if lora else wbytes) / shard
        grads, optim = trained * wbytes / shard, trained * opt / shard
        if strategy != "fsdp2" and not pure_bf16:
            transient += n * 2  # autocast keeps a bf16 copy of every weight through the forward pass
        if strategy == "ddp" and world > 1:
            transient += trained * wbytes  # DDP's gradient buckets
    return Projection(
        weights=weights, gradients=grads, optimizer=optim,
        activations=shape.activation_bytes(per_device * max_length, checkpointing), transient=transient,
        checkpoint_disk=n * (2 if lora else wbytes) + trained * opt, final_disk=n * 2)


def check_disk(proj: Projection, output_dir: Path, keep: int) -> None:
    """Refuse when output_dir's disk cannot hold `keep` checkpoints and the final model."""
    output_dir.mkdir(parents=True, exist_ok=True)
    have = sum(f.stat().st_size for f in output_dir.glob("checkpoint-*/**/*") if f.is_file())
    need = max(0.0, keep * proj.checkpoint_disk - have) + proj.final_disk
    free = shutil.disk_usage(output_dir).free
    if free < need:
        raise TrainError(
            f"{output_dir} has {free / GIB:.1f} GiB free but {keep} checkpoint(s) of "
            f"{proj.checkpoint_disk / GIB:.1f} GiB and the final model need {need / GIB:.1f} GiB; "
            f"free space, lower save_total_limit or choose another output_dir")


def project_run(shape: Shape, *, samples: int, mean_tokens: float, epochs: float, devices: int,
                peak_flops: float, mfu: float, max_length: int) -> float:
    """Projected training hours at a given MFU."""
    tokens = samples * mean_tokens * epochs
    return tokens * shape.flops_per_token(int(mean_tokens)) / (peak_flops * mfu * devices) / 3600
