"""Per-log-row measurements: tokens/s (total and per device), MFU where the device's peak is
known, peak memory, step time; written to loss.jsonl and handed to the console."""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

GIB = 1024 ** 3


def peak_memory_gib() -> float:
    """Peak accelerator memory of this process (CUDA), else its peak resident set size."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / GIB
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / GIB * (1 if sys.platform == "darwin" else 1024)


def metrics_callback(log_path: Path, *, world: int, flops_per_token: float, peak_flops: float | None,
                     on_log: Callable[[dict[str, Any]], None] | None = None) -> Any:
    from transformers import TrainerCallback

    class Measure(TrainerCallback):
        def __init__(self) -> None:
            self.t_log = self.t_step = 0.0
            self.tokens_log = 0
            self.steps_log = 0
            self.step_time = 0.0

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.t_log = time.perf_counter()
            self.tokens_log, self.steps_log = state.num_input_tokens_seen, state.global_step

        def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.t_step = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.step_time = time.perf_counter() - self.t_step

        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None,
                   **kw: Any) -> None:
            if not logs:
                return
            row: dict[str, Any] = {"step": state.global_step, "epoch": state.epoch, **logs}
            now = time.perf_counter()
            if "loss" in logs and state.global_step > self.steps_log:
                dt = now - self.t_log
                tokens = state.num_input_tokens_seen - self.tokens_log
                tps = tokens / dt if dt > 0 else 0.0
                row.update(tokens_per_s=tps, tokens_per_s_per_device=tps / world,
                           step_time_s=dt / (state.global_step - self.steps_log),
                           last_step_time_s=self.step_time, peak_memory_gib=peak_memory_gib())
                if peak_flops:
                    row["mfu"] = tps * flops_per_token / (peak_flops * world)
                self.t_log, self.tokens_log, self.steps_log = now, state.num_input_tokens_seen, \
                    state.global_step
            if state.is_world_process_zero:
                with log_path.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(row) + "\n")
                if on_log:
                    on_log(row)

    return Measure()
