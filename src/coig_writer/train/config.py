"""Training settings with the paper's defaults (Qwen2.5-7B-Instruct, 3 epochs, AdamW,
lr 2e-5, global batch 32, 10% warmup, max length 8,192)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field

Strategy = Literal["auto", "ddp", "fsdp2", "zero3", "zero2"]


class TrainConfig(BaseModel):
    model: str = Field(description="model folder or hub id (hub ids need network)")
    data: str = Field(description="prompt-completion JSONL from `coig-writer mix build`")
    output_dir: str = "runs/sft"
    epochs: float = 3
    learning_rate: float = 2e-5
    global_batch: int = Field(32, ge=1, description="samples per optimizer step, all devices together")
    per_device_batch: int = Field(1, ge=1, description="samples per device per micro-batch")
    max_length: int = 8192
    overlong: Literal["truncate", "drop"] = Field(
        "truncate", description="samples longer than max_length: cut (keeping the final EOS) or drop")
    padding_free: bool = Field(True, description="concatenate a micro-batch's samples, no pad tokens")
    packing: bool = Field(False, description="pack samples into max_length blocks: changes the "
                                             "samples per step, recorded as a deviation")
    warmup_ratio: float = 0.1
    lr_scheduler: str = "cosine"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    bf16: bool | None = Field(None, description="bf16 autocast over fp32 master weights; None: on "
                                                "where the device computes in bf16 (CUDA with bf16, CPU)")
    pure_bf16: bool = Field(False, description="weights and AdamW in bf16 (loses updates below "
                                               "bf16 resolution; opt-in only)")
    gradient_checkpointing: bool = True
    optimizer: Literal["adamw_fused", "adamw", "adamw_8bit"] = "adamw_fused"
    attn_implementation: str | None = Field(None, description="None: flash_attention_2 where "
                                                              "installed on CUDA, else sdpa")
    liger: bool | None = Field(None, description="Liger kernels; None: where installed on CUDA")
    strategy: Strategy = "auto"
    logging_steps: int = 10
    save_steps: int = 200
    save_total_limit: int = 3
    max_steps: int = -1
    seed: int = 0
    resume: bool = True

    @classmethod
    def load(cls, path: str | Path, **overrides: object) -> TrainConfig:
        data = yaml.safe_load(Path(path).read_text("utf-8")) or {}
        return cls.model_validate({**data, **{k: v for k, v in overrides.items() if v is not None}})
