"""Checkpoints under Ray Train: each trainer checkpoint is reported to Ray's storage path, and a
restarted worker group copies the latest one back before resuming."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any


def restore_latest(checkpoint: Any, output_dir: Path) -> Path | None:
    """Copy Ray's latest checkpoint into output_dir unless it is already there."""
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as d:
        src = Path(d)
        name = next((p.name for p in src.iterdir() if p.name.startswith("checkpoint-")), None)
        if name is None:
            return None
        dest = output_dir / name
        if not dest.exists():
            output_dir.mkdir(parents=True, exist_ok=True)
            shutil.copytree(src / name, dest)
        return dest


def _callback_base() -> type:
    from transformers import TrainerCallback

    return TrainerCallback


class RayReport(_callback_base()):  # type: ignore[misc]
    """Report each saved checkpoint (rank 0) and the step (every rank) to Ray Train."""

    def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        import ray.train

        metrics = {"step": state.global_step}
        ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if state.is_world_process_zero and ckpt.is_dir():
            staging = Path(args.output_dir) / ".ray_report"
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(ckpt, staging / ckpt.name, copy_function=os.link)  # hard links: no copy
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(str(staging)))
            shutil.rmtree(staging, ignore_errors=True)
        else:
            ray.train.report(metrics)
