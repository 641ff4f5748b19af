"""The training function: SFT of (config, world) with TRL. It knows nothing of how it was
launched; it checks the batch arithmetic against the world before loading anything, lets the
trainer build the model after the distributed setup, and leaves a bf16 model ready to serve."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .choices import Setup, choose
from .config import TrainConfig
from .data import tokenized_dataset
from .memory import Shape, check_disk, device_peak_flops, project
from .metrics import metrics_callback
from .world import BatchPlan, TrainError, World, batch_plan, check_resume, last_checkpoint, save_plan

RESULT_FILE = "train_result.json"


def _plan_saver(plan: BatchPlan) -> Any:
    from transformers import TrainerCallback

    class SavePlan(TrainerCallback):
        def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if state.is_world_process_zero and ckpt.is_dir():
                save_plan(plan, ckpt)

    return SavePlan()


def _trim_log(log: Path, step: int) -> None:
    """Drop rows logged after the checkpoint being resumed (they are about to be redone)."""
    if log.exists():
        rows = [r for r in log.read_text("utf-8").splitlines() if r and json.loads(r)["step"] <= step]
        log.write_text("".join(r + "\n" for r in rows), "utf-8")


def _sft_args(cfg: TrainConfig, plan: BatchPlan, setup: Setup) -> Any:
    from trl import SFTConfig

    fsdp = setup.fsdp_config is not None
    if fsdp and setup.fsdp_config.get("cpu_ram_efficient_loading"):
        os.environ.setdefault("ACCELERATE_USE_FSDP", "true")  # from_pretrained: rank 0 reads, others wait
    return SFTConfig(
        output_dir=cfg.output_dir, num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate, per_device_train_batch_size=cfg.per_device_batch,
        gradient_accumulation_steps=plan.accumulation, warmup_steps=cfg.warmup_ratio,  # float = ratio
        lr_scheduler_type=cfg.lr_scheduler, weight_decay=cfg.weight_decay, optim=setup.optim,
        max_grad_norm=cfg.max_grad_norm, max_length=cfg.max_length if cfg.packing else None,
        padding_free=cfg.padding_free and not cfg.packing, packing=cfg.packing,
        completion_only_loss=True, bf16=setup.bf16, use_cpu=setup.device == "cpu",
        activation_checkpointing=cfg.gradient_checkpointing and not fsdp,
        fsdp=True if fsdp else None, fsdp_config=setup.fsdp_config, deepspeed=setup.deepspeed,
        model_init_kwargs={"dtype": setup.dtype, "attn_implementation": setup.attn},
        use_liger_kernel=setup.liger, logging_steps=cfg.logging_steps, save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit, seed=cfg.seed, data_seed=cfg.seed,
        include_num_input_tokens_seen="non_padding", report_to=[], disable_tqdm=True,
        dataset_kwargs={"skip_prepare_dataset": not cfg.packing}, ddp_find_unused_parameters=False)


def _save_final(trainer: Any, tok: Any, final: Path, lora: bool) -> None:
    """The trained model as bf16 safetensors with tokenizer and chat template (vLLM-loadable)."""
    import torch

    acc = trainer.accelerator
    acc.wait_for_everyone()
    model = acc.unwrap_model(trainer.model)
    if lora:
        model = model.merge_and_unload()
        state = model.state_dict()
    else:
        state = acc.get_state_dict(trainer.model)
    if acc.is_main_process:
        cast: dict[int, Any] = {}
        state = {k: cast.setdefault(id(v), v.detach().to("cpu", torch.bfloat16).contiguous())
                 if v.is_floating_point() else v for k, v in state.items()}
        model.save_pretrained(final, state_dict=state, safe_serialization=True)
        conf = final / "config.json"  # save_pretrained records the live (fp32) weights' dtype
        conf.write_text(json.dumps({**json.loads(conf.read_text("utf-8")), "dtype": "bfloat16"},
                                   indent=2), "utf-8")
        tok.save_pretrained(final)
    acc.wait_for_everyone()


def train_sft(cfg: TrainConfig, world: World, on_log: Callable[[dict[str, Any]], None] | None = None,
              callbacks: list[Any] | None = None, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run (or resume) SFT in `world`; returns what train_result.json holds."""
    plan = batch_plan(cfg.global_batch, cfg.per_device_batch, world.size, cfg.max_length)
    out = Path(cfg.output_dir)
    if not Path(cfg.data).exists():
        raise TrainError(f"no training data at {cfg.data}; run `coig-writer mix build` first")
    from transformers import AutoConfig, AutoTokenizer

    last = last_checkpoint(out) if cfg.resume else None
    if last:
        check_resume(plan, last, out)
        last = str(last)
    model_config = AutoConfig.from_pretrained(cfg.model)
    setup = choose(cfg, world, model_config)
    shape = Shape.of(model_config)
    proj = project(shape, world=world.size, strategy=setup.strategy, per_device=cfg.per_device_batch,
                   max_length=cfg.max_length, checkpointing=cfg.gradient_checkpointing,
                   pure_bf16=cfg.pure_bf16, optimizer=cfg.optimizer, lora=cfg.lora)
    if world.is_main:
        check_disk(proj, out, cfg.save_total_limit)
    tok = AutoTokenizer.from_pretrained(cfg.model)
    dataset, report = tokenized_dataset(Path(cfg.data), tok, cfg.max_length, cfg.overlong)
    device, peak = device_peak_flops()
    deviations = (["packing: samples packed into max_length blocks, so a step no longer sees exactly "
                   f"{cfg.global_batch} samples"] if cfg.packing else [])
    run_config = {"config": cfg.model_dump(), "world": asdict(world), "batch": asdict(plan),
                  "setup": asdict(setup), "data": report.as_dict(), "deviations": deviations,
                  "device": device, "params": shape.params, "projection": asdict(proj)}
    if world.is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / RESULT_FILE).unlink(missing_ok=True)  # "done" only once this run has finished
        (out / "run_config.json").write_text(json.dumps(run_config, indent=1, default=str), "utf-8")
        say(f"{world.size} process(es) via {world.launcher}, strategy {setup.strategy}, {plan.describe()}")
        say(f"{shape.params / 1e9:.3g}B parameters; {proj.describe()}")
        if cfg.pure_bf16:
            say("warning: pure_bf16 trains bf16 weights with bf16 AdamW states; updates smaller than "
                "bf16's resolution are lost (tiny Qwen2, lr 2e-5: 30% of a layer's weights moved at all)")
        say(f"data: {report.kept} of {report.samples} samples, {report.overlong} longer than "
            f"{cfg.max_length} ({report.policy}); {'; '.join(setup.notes + deviations)}")
        if last:
            _trim_log(out / "loss.jsonl", int(Path(last).name.split("-")[-1]))
    peft_config = None
    if cfg.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                                 target_modules="all-linear", task_type="CAUSAL_LM")
    from trl import SFTTrainer

    args = _sft_args(cfg, plan, setup)  # the distributed state exists from here on
    measure = metrics_callback(out / "loss.jsonl", world=world.size, on_log=on_log, peak_flops=peak,
                               flops_per_token=shape.flops_per_token(int(report.mean_tokens)))
    trainer = SFTTrainer(model=cfg.model, args=args, train_dataset=dataset, processing_class=tok,
                         peft_config=peft_config,
                         callbacks=[measure, _plan_saver(plan), *(callbacks or [])])
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # loss.jsonl and on_log report instead
    result = trainer.train(resume_from_checkpoint=last)
    final = out / "final"
    _save_final(trainer, tok, final, cfg.lora)
    m = result.metrics
    tokens = trainer.state.num_input_tokens_seen - getattr(trainer, "_initial_num_input_tokens_seen", 0)
    tps = tokens / m["train_runtime"] if m.get("train_runtime") else 0.0
    rows = [json.loads(r) for r in (out / "loss.jsonl").read_text("utf-8").splitlines()] \
        if (out / "loss.jsonl").exists() else []
    summary = {"global_step": trainer.state.global_step, "model_dir": str(final), "resumed_from": last,
               "tokens_per_s": tps, "tokens_per_s_per_device": tps / world.size,
               "mfu": tps * shape.flops_per_token(int(report.mean_tokens)) / (peak * world.size)
               if peak else None,
               "peak_memory_gib": max((r.get("peak_memory_gib", 0) for r in rows), default=None),
               "train_loss": m.get("train_loss"), "train_runtime_s": m.get("train_runtime"),
               "world": world.size, "strategy": setup.strategy, "batch": asdict(plan),
               "data": report.as_dict(), "deviations": deviations,
               "serve_command": f"vllm serve {final.resolve()} --max-model-len {cfg.max_length}"}
    if world.is_main:
        (out / RESULT_FILE).write_text(json.dumps(summary, indent=1), "utf-8")
    return summary
