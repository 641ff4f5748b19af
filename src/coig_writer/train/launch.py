"""Launchers: decide the world and hand it to the training function. One process; torchrun
spawned here (`--nproc`, `--nnodes`); an outer torchrun/accelerate/srun (never relaunched);
or Ray Train workers (`--executor ray`), restarted from the last checkpoint when one dies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .config import TrainConfig
from .sft import RESULT_FILE, train_sft
from .world import TrainError, detect_world, outer_launcher, slurm_env

CHILD_ENV = "COIG_WRITER_TORCHRUN_CHILD"  # set for the processes torchrun starts on our behalf


@dataclass
class Launch:
    nproc: int | None = None  # None: every visible GPU (1 on CPU)
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str | None = None
    master_port: int = 29500
    executor: str = "local"  # local | ray
    workers: int | None = None
    ray_address: str | None = None
    storage_path: str | None = None
    max_failures: int = 2


def visible_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _absolute(cfg: TrainConfig) -> TrainConfig:
    upd = {k: str(Path(getattr(cfg, k)).resolve()) for k in ("data", "output_dir")}
    if Path(cfg.model).exists():
        upd["model"] = str(Path(cfg.model).resolve())
    return cfg.model_copy(update=upd)


def _read_result(cfg: TrainConfig) -> dict[str, Any]:
    f = Path(cfg.output_dir) / RESULT_FILE
    if not f.exists():
        raise TrainError(f"training ended without {f}; see the log above")
    return json.loads(f.read_text("utf-8"))


def torchrun_command(config_path: Path, launch: Launch, nproc: int) -> list[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}"]
    if launch.nnodes > 1:
        if not launch.master_addr:
            raise TrainError(f"--nnodes {launch.nnodes} needs --master-addr (the address of node rank 0)")
        cmd += [f"--nnodes={launch.nnodes}", f"--node-rank={launch.node_rank}",
                f"--master-addr={launch.master_addr}", f"--master-port={launch.master_port}"]
    else:
        cmd += ["--standalone"]
    return cmd + ["-m", "coig_writer.cli", "train", "run", "--config", str(config_path)]


def run_torchrun(cfg: TrainConfig, launch: Launch, nproc: int) -> dict[str, Any]:
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "launch_config.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(), sort_keys=False), "utf-8")
    rc = subprocess.run(torchrun_command(path, launch, nproc), env={**os.environ, CHILD_ENV: "1"}).returncode
    if rc:
        raise TrainError(f"torchrun exited with status {rc}; the worker logs are above "
                         f"(rerun the same command to resume from the last checkpoint)")
    if launch.node_rank:
        return {"global_step": None, "model_dir": str(out / "final"), "node_rank": launch.node_rank}
    return _read_result(cfg)


def _ray_worker(config: dict[str, Any]) -> None:
    """Ray Train's per-worker loop: the same training function, world from Ray's environment."""
    import ray.train

    from .ray_checkpoints import RayReport, restore_latest

    os.environ["RAY_TRAIN_WORKER"] = "1"
    cfg = TrainConfig.model_validate(config["cfg"])
    world = detect_world()
    if world.is_main:
        restore_latest(ray.train.get_checkpoint(), Path(cfg.output_dir))
    train_sft(cfg, world, callbacks=[RayReport()])


def run_ray(cfg: TrainConfig, launch: Launch) -> dict[str, Any]:
    import ray
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    storage = Path(launch.storage_path or Path(cfg.output_dir) / "ray").resolve()
    if not ray.is_initialized():
        if launch.ray_address:
            ray.init(address=launch.ray_address)
        else:
            ray.init(num_cpus=max(launch.workers or 1, os.cpu_count() or 1), include_dashboard=False,
                     log_to_driver=True)
    gpus = int(ray.cluster_resources().get("GPU", 0))
    gpu = gpus > 0
    workers = launch.workers or max(1, gpus)
    trainer = TorchTrainer(
        _ray_worker, train_loop_config={"cfg": cfg.model_dump()},
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=gpu),
        torch_config=TorchConfig(backend="nccl" if gpu else "gloo"),
        run_config=RunConfig(name=Path(cfg.output_dir).name, storage_path=str(storage),
                             failure_config=FailureConfig(max_failures=launch.max_failures),
                             checkpoint_config=CheckpointConfig(num_to_keep=cfg.save_total_limit)))
    trainer.fit()
    return _read_result(cfg)


def launch_training(cfg: TrainConfig, launch: Launch | None = None,
                    on_log: Callable[[dict[str, Any]], None] | None = None,
                    say: Callable[[str], None] = print) -> dict[str, Any]:
    """Pick the launcher from the arguments and the environment, then train."""
    launch = launch or Launch()
    if launch.executor == "ray":
        return run_ray(_absolute(cfg), launch)
    outer = outer_launcher()
    if outer:  # already one of several processes: never relaunch
        if outer == "srun":
            os.environ.update(slurm_env())
        return train_sft(cfg, detect_world(), on_log=on_log, say=say)
    nproc = launch.nproc if launch.nproc is not None else max(1, visible_gpus())
    if nproc <= 1 and launch.nnodes <= 1:
        return train_sft(cfg, detect_world(), on_log=on_log, say=say)
    return run_torchrun(_absolute(cfg), launch, nproc)
