"""Write a mixture: manifest, TRL datasets, LLaMA-Factory data + dataset_info.json, configs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from .builder import Mixture
from .render import messages_row, prompt_completion


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    tmp.replace(path)


def export_mixture(mix: Mixture, out: Path, reasoning: str = "think",
                   base_model: str = "Qwen/Qwen2.5-7B-Instruct", gpus: int = 1) -> dict[str, Path]:
    """Everything needed to train on `mix` with our launcher, TRL directly or LLaMA-Factory
    (its accumulation computed for `gpus` devices, with a DeepSpeed ZeRO-3 config beside it)."""
    from ..train.choices import shipped_config
    from ..train.config import TrainConfig
    from ..train.world import batch_plan

    cfg = TrainConfig(model=base_model, data=str(out / "train.jsonl"), output_dir=f"runs/{mix.spec.name}")
    plan = batch_plan(cfg.global_batch, cfg.per_device_batch, gpus, cfg.max_length)  # TrainError if not whole
    out.mkdir(parents=True, exist_ok=True)
    name = mix.spec.name
    files = {"manifest": out / "manifest.json", "trl": out / "train.jsonl",
             "messages": out / "messages.jsonl", "llamafactory": out / f"{name}.json",
             "dataset_info": out / "dataset_info.json", "train_config": out / "train.yaml",
             "llamafactory_config": out / "llamafactory_sft.yaml",
             "deepspeed": out / "ds_zero3.json"}
    manifest = mix.manifest()
    manifest["reasoning"] = reasoning
    files["manifest"].write_text(json.dumps(manifest, ensure_ascii=False, indent=1), "utf-8")
    _jsonl(files["trl"], [prompt_completion(s, reasoning) for s in mix.samples])
    _jsonl(files["messages"], [messages_row(s, reasoning) for s in mix.samples])
    sharegpt = [{"id": r["id"], "conversations": [
        {"from": "human" if m["role"] == "user" else "gpt", "value": m["content"]}
        for m in r["messages"]]} for r in (messages_row(s, reasoning) for s in mix.samples)]
    files["llamafactory"].write_text(json.dumps(sharegpt, ensure_ascii=False), "utf-8")
    info_path = files["dataset_info"]
    info = json.loads(info_path.read_text("utf-8")) if info_path.exists() else {}
    info[name] = {"file_name": files["llamafactory"].name, "formatting": "sharegpt",
                  "columns": {"messages": "conversations"}}
    info_path.write_text(json.dumps(info, ensure_ascii=False, indent=2), "utf-8")
    files["train_config"].write_text(yaml.safe_dump(cfg.model_dump(), sort_keys=False), "utf-8")
    lf = {"model_name_or_path": base_model, "stage": "sft", "do_train": True,
          "finetuning_type": "full", "dataset": name, "dataset_dir": str(out),
          "template": "qwen", "cutoff_len": cfg.max_length,
          "per_device_train_batch_size": cfg.per_device_batch,
          "gradient_accumulation_steps": plan.accumulation,  # x per_device x gpus = global batch
          "learning_rate": cfg.learning_rate, "num_train_epochs": float(cfg.epochs),
          "lr_scheduler_type": "cosine", "warmup_ratio": cfg.warmup_ratio, "bf16": True,
          "output_dir": f"saves/{name}", "logging_steps": 10, "save_steps": 500,
          "deepspeed": str(files["deepspeed"]), "report_to": "none"}
    files["deepspeed"].write_text(json.dumps(shipped_config("zero3.json"), indent=1), "utf-8")
    files["llamafactory_config"].write_text(yaml.safe_dump(lf, sort_keys=False), "utf-8")
    return files
