"""Compatibility entry: `train(cfg)` runs SFT in this process's world (see launch.py for
torchrun and Ray, sft.py for the training function)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .config import TrainConfig
from .sft import train_sft
from .world import TrainError, detect_world

__all__ = ["TrainError", "train"]


def train(cfg: TrainConfig, on_log: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run (or resume) SFT in the world this process belongs to; returns train_result.json's content."""
    return train_sft(cfg, detect_world(), on_log=on_log)
