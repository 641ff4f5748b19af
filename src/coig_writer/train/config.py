"""Training settings with the paper's defaults (Qwen2.5-7B-Instruct, 3 epochs, AdamW,
lr 2e-5, global batch 32, 10% warmup, max length 8,192)."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, Field


class TrainConfig(BaseModel):
    model: str = Field(description="model folder or hub id (hub ids need network)")
    data: str = Field(description="prompt-completion JSONL from `coig-writer mix build`")
    output_dir: str = "runs/sft"
    epochs: float = 3
    learning_rate: float = 2e-5
    global_batch: int = 32
    per_device_batch: int = 1
    max_length: int = 8192
    warmup_ratio: float = 0.1
    lr_scheduler: str = "cosine"
    weight_decay: float = 0.0
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    bf16: bool | None = Field(None, description="None: on when a CUDA GPU supports it")
    gradient_checkpointing: bool = False
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
