"""Distributed SFT on CPU with real engines: torchrun (gloo) and Ray Train workers take the same
first optimizer step as one process with twice the accumulation; Ray restarts a group whose
worker died from the last checkpoint; a run killed with -9 resumes from its last checkpoint on
the uninterrupted loss curve; the FSDP2/ZeRO configs are valid."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from coig_writer.train.config import TrainConfig
from coig_writer.train.launcher import TrainError, train
from coig_writer.train.tiny import build_tiny_model, write_tiny_data

transformers = pytest.importorskip("transformers")
SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def first_step(tiny, tmp_path_factory):
    """Config of a 1-step run whose global batch is the whole data set, and its single-process
    result (accumulation 4): every sample is in the first step however the world splits it."""
    tmp = tmp_path_factory.mktemp("ref")
    cfg = TrainConfig(model=str(tiny), data=str(write_tiny_data(tmp / "d.jsonl", 4)),
                      output_dir=str(tmp / "one"), global_batch=4, per_device_batch=1, max_length=128,
                      bf16=False, logging_steps=1, max_steps=1, save_steps=100)
    train(cfg)
    return cfg, _rows(Path(cfg.output_dir))[0]


def _rows(out: Path) -> list[dict]:
    return [r for r in map(json.loads, (out / "loss.jsonl").read_text().splitlines()) if "loss" in r]


def _cli(args: list[str], timeout: int = 400, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "coig_writer.cli", *args], env=env, timeout=timeout,
                          capture_output=True, text=True, **kw)


def _write(cfg: TrainConfig, path: Path, **update) -> Path:
    path.write_text(yaml.safe_dump(cfg.model_copy(update=update).model_dump()), "utf-8")
    return path


def _same_step(row: dict, ref: dict) -> None:
    assert row["loss"] == pytest.approx(ref["loss"], abs=1e-5)
    assert row["grad_norm"] == pytest.approx(ref["grad_norm"], rel=1e-3)


def test_torchrun_two_processes_take_the_single_process_step(first_step, tmp_path):
    cfg, ref = first_step
    out = tmp_path / "tr"
    r = _cli(["train", "run", "--config", str(_write(cfg, tmp_path / "c.yaml", output_dir=str(out))),
              "--nproc", "2", "--json"])
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout)
    assert result["world"] == 2 and result["batch"]["accumulation"] == 2 and result["strategy"] == "ddp"
    _same_step(_rows(out)[0], ref)
    assert (out / "final/model.safetensors").exists() and (out / "train_result.json").exists()


def test_ray_train_two_workers_take_the_single_process_step_and_survive_a_dead_worker(first_step, tmp_path):
    """2 Ray Train workers: the first step equals one process's; a worker killed with -9 after the
    first checkpoint makes Ray restart the group, which resumes from that checkpoint."""
    pytest.importorskip("ray.train")
    import psutil

    cfg, ref = first_step
    out = tmp_path / "ray"
    conf = _write(cfg, tmp_path / "c.yaml", output_dir=str(out), max_steps=3, save_steps=1)
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    log = (tmp_path / "ray.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "coig_writer.cli", "train", "run", "--config", str(conf),
                             "--executor", "ray", "--workers", "2", "--json"], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    deadline = time.time() + 400
    while not (out / "checkpoint-1/coig_writer_batch.json").exists():
        assert proc.poll() is None and time.time() < deadline, (tmp_path / "ray.log").read_text()[-3000:]
        time.sleep(0.05)
    workers = [c for c in psutil.Process(proc.pid).children(recursive=True)
               if c.name().startswith("ray::RayTrainWorker")]
    assert len(workers) == 2
    workers[-1].kill()
    assert proc.wait(timeout=600) == 0, (tmp_path / "ray.log").read_text()[-3000:]
    result = json.loads((out / "train_result.json").read_text())
    assert result["world"] == 2 and result["batch"]["accumulation"] == 2 and result["global_step"] == 3
    assert Path(result["resumed_from"]).name.startswith("checkpoint-")  # the restarted group resumed
    rows = _rows(out)
    assert [r["step"] for r in rows] == [1, 2, 3]
    _same_step(rows[0], ref)
    assert any((out / "ray").rglob("coig_writer_batch.json"))  # checkpoints reported to Ray's storage


def test_kill_9_then_rerun_continues_on_the_uninterrupted_curve(tiny, tmp_path):
    base = TrainConfig(model=str(tiny), data=str(write_tiny_data(tmp_path / "d.jsonl", 16)),
                       output_dir=str(tmp_path / "whole"), global_batch=2, per_device_batch=2, max_length=128,
                       bf16=False, logging_steps=1, max_steps=6, save_steps=2, learning_rate=1e-3)
    train(base)
    whole = {r["step"]: r["loss"] for r in _rows(tmp_path / "whole")}
    out = tmp_path / "killed"
    conf = _write(base, tmp_path / "k.yaml", output_dir=str(out))
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "coig_writer.cli", "train", "run", "--config", str(conf)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 300
    while not (out / "checkpoint-2/coig_writer_batch.json").exists():
        assert proc.poll() is None and time.time() < deadline, "run ended before its first checkpoint"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "train_result.json").exists()
    r = _cli(["train", "run", "--config", str(conf), "--json"])
    assert r.returncode == 0, r.stderr[-3000:]
    resumed = json.loads(r.stdout)
    assert Path(resumed["resumed_from"]).name.startswith("checkpoint-") and resumed["global_step"] == 6
    rows = _rows(out)
    assert [r["step"] for r in rows] == list(range(1, 7))  # no step twice, none missing
    for row in rows:
        assert row["loss"] == pytest.approx(whole[row["step"]], abs=1e-5), row["step"]


def test_fsdp2_and_zero_configs_are_generated_and_valid(tiny, tmp_path):
    """accelerate runs FSDP only on accelerators (its MULTI_CPU state never becomes FSDP), so on
    CPU the generated config is validated by building the plugin the trainer would use."""
    from accelerate.utils import FullyShardedDataParallelPlugin
    from transformers import AutoConfig, TrainingArguments

    from coig_writer.train.choices import choose, fsdp2_config, shipped_config
    from coig_writer.train.world import World

    cfg = TrainConfig(model=str(tiny), data="d.jsonl", strategy="fsdp2")
    model_config = AutoConfig.from_pretrained(tiny)
    fc = fsdp2_config(cfg, model_config)
    assert fc["transformer_layer_cls_to_wrap"] == ["Qwen2DecoderLayer"]
    args = TrainingArguments(output_dir=str(tmp_path), fsdp=True, fsdp_config=fc, use_cpu=True, report_to=[])
    plugin = FullyShardedDataParallelPlugin(**args.fsdp_plugin_args)
    assert plugin.fsdp_version == 2 and plugin.activation_checkpointing and plugin.cpu_ram_efficient_loading
    assert plugin.transformer_cls_names_to_wrap == ["Qwen2DecoderLayer"] and plugin.reshard_after_forward
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(TrainError, match="fsdp2 needs GPUs"):
            choose(cfg, World(size=2, local_size=2, launcher="torchrun"), model_config)
    for name, stage in (("zero3.json", 3), ("zero2.json", 2)):
        ds = shipped_config(name)
        assert ds["zero_optimization"]["stage"] == stage and ds["bf16"]["enabled"] == "auto"
        assert ds["gradient_accumulation_steps"] == ds["train_batch_size"] == "auto"
    assert shipped_config("zero3.json")["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"]
    import importlib.util

    if importlib.util.find_spec("deepspeed") is None:
        with pytest.raises(TrainError, match="pip install deepspeed"):
            choose(cfg.model_copy(update={"strategy": "zero3"}), World(size=2), model_config)
