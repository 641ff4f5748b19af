"""Launch SFT with TRL: full fine-tuning or LoRA, loss only on the assistant turn
(prompt-completion data), resumable from the last checkpoint, loss logged to loss.jsonl."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import TrainConfig


class TrainError(ValueError):
    pass


def _callback(log_path: Path, on_log: Callable[[dict[str, Any]], None] | None) -> Any:
    from transformers import TrainerCallback

    class LossLog(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None,
                   **kw: Any) -> None:
            if logs and state.is_world_process_zero:
                row = {"step": state.global_step, "epoch": state.epoch, **logs}
                with log_path.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(row) + "\n")
                if on_log:
                    on_log(row)

    return LossLog()


def train(cfg: TrainConfig, on_log: Callable[[dict[str, Any]], None] | None = None
          ) -> dict[str, Any]:
    """Run (or resume) SFT; returns the final training metrics and paths."""
    import torch
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.trainer_utils import get_last_checkpoint
    from trl import SFTConfig, SFTTrainer

    if not Path(cfg.data).exists():
        raise TrainError(f"no training data at {cfg.data}; run `coig-writer mix build` first")
    world = max(1, torch.cuda.device_count())
    if cfg.global_batch % (cfg.per_device_batch * world):
        raise TrainError(f"global_batch {cfg.global_batch} is not a multiple of per_device_batch "
                         f"{cfg.per_device_batch} x {world} devices")
    accum = cfg.global_batch // (cfg.per_device_batch * world)
    bf16 = cfg.bf16 if cfg.bf16 is not None else (torch.cuda.is_available()
                                                  and torch.cuda.is_bf16_supported())
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "coig_writer_train.json").write_text(cfg.model_dump_json(indent=1), "utf-8")
    tok = AutoTokenizer.from_pretrained(cfg.model)
    model = AutoModelForCausalLM.from_pretrained(
        cfg.model, dtype=torch.bfloat16 if bf16 else torch.float32)
    data = load_dataset("json", data_files=cfg.data, split="train")
    peft_config = None
    if cfg.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                                 lora_dropout=cfg.lora_dropout, target_modules="all-linear",
                                 task_type="CAUSAL_LM")
    args = SFTConfig(
        output_dir=str(out), num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate, per_device_train_batch_size=cfg.per_device_batch,
        gradient_accumulation_steps=accum, warmup_steps=cfg.warmup_ratio,  # float = ratio
        lr_scheduler_type=cfg.lr_scheduler, weight_decay=cfg.weight_decay, optim="adamw_torch",
        max_length=cfg.max_length, completion_only_loss=True, bf16=bf16,
        gradient_checkpointing=cfg.gradient_checkpointing, logging_steps=cfg.logging_steps,
        save_steps=cfg.save_steps, save_total_limit=cfg.save_total_limit, seed=cfg.seed,
        report_to=[], disable_tqdm=False)
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tok,
                         peft_config=peft_config,
                         callbacks=[_callback(out / "loss.jsonl", on_log)])
    last = get_last_checkpoint(str(out)) if cfg.resume and out.exists() else None
    result = trainer.train(resume_from_checkpoint=last)
    trainer.save_model(str(out / "final"))
    tok.save_pretrained(str(out / "final"))
    return {"resumed_from": last, "global_step": trainer.state.global_step,
            "metrics": result.metrics, "model_dir": str(out / "final")}
