"""The world a training function runs in (read from the environment its launcher set up)
and the batch arithmetic that must hold in it."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path


class TrainError(ValueError):
    """A training run that cannot start; the message says why and what to change."""


@dataclass(frozen=True)
class World:
    size: int = 1
    rank: int = 0
    local_rank: int = 0
    local_size: int = 1
    launcher: str = "single"  # single | torchrun | accelerate | srun | ray

    @property
    def nodes(self) -> int:
        return max(1, self.size // max(1, self.local_size))

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def outer_launcher(env: Mapping[str, str] = os.environ) -> str | None:
    """Which launcher already started this process (then nothing is relaunched)."""
    if "RAY_TRAIN_WORKER" in env:
        return "ray"
    if "ACCELERATE_MIXED_PRECISION" in env and "RANK" in env:
        return "accelerate"
    if "TORCHELASTIC_RUN_ID" in env or ("RANK" in env and "WORLD_SIZE" in env):
        return "torchrun"
    if int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in env:
        return "srun"
    return None


def slurm_env(env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR for a process started by `srun`, as torch expects."""
    master = env.get("MASTER_ADDR")
    if not master:
        nodes = env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST", "")
        try:
            out = subprocess.run(["scontrol", "show", "hostnames", nodes], capture_output=True,
                                 text=True, timeout=30, check=True).stdout.split()
            master = out[0]
        except (OSError, subprocess.SubprocessError, IndexError):
            raise TrainError("started by srun but MASTER_ADDR is not set and `scontrol show hostnames` "
                             "failed; export MASTER_ADDR=<first node> before srun") from None
    return {"RANK": env["SLURM_PROCID"], "WORLD_SIZE": env["SLURM_NTASKS"],
            "LOCAL_RANK": env.get("SLURM_LOCALID", "0"),
            "LOCAL_WORLD_SIZE": env.get("SLURM_NTASKS_PER_NODE", "1").split("(")[0],
            "MASTER_ADDR": master, "MASTER_PORT": env.get("MASTER_PORT", "29500")}


def detect_world(env: Mapping[str, str] = os.environ) -> World:
    """The world from the environment; a plain process is a world of one."""
    launcher = outer_launcher(env)
    if launcher is None:
        return World()
    if launcher == "srun":
        env = {**env, **slurm_env(env)}
    size = int(env.get("WORLD_SIZE", "1"))
    return World(size=size, rank=int(env.get("RANK", "0")), local_rank=int(env.get("LOCAL_RANK", "0")),
                 local_size=int(env.get("LOCAL_WORLD_SIZE", str(size))), launcher=launcher)


@dataclass(frozen=True)
class BatchPlan:
    """global_batch = per_device x accumulation x world, checked before anything loads."""
    global_batch: int
    per_device: int
    world: int
    accumulation: int
    max_length: int

    def describe(self) -> str:
        return (f"global batch {self.global_batch} = {self.per_device} per device x "
                f"{self.accumulation} accumulation x {self.world} device(s)")


def batch_plan(global_batch: int, per_device: int, world: int, max_length: int) -> BatchPlan:
    per_step = per_device * world
    if global_batch % per_step:
        lower = global_batch // per_step * per_step
        raise TrainError(
            f"global_batch {global_batch} is not a multiple of per_device_batch {per_device} x "
            f"{world} device(s) = {per_step}: no whole accumulation gives it. Choose a global batch of "
            f"{lower or per_step} or {lower + per_step}, or a per_device_batch that divides "
            f"{global_batch // world if global_batch % world == 0 else global_batch}.")
    return BatchPlan(global_batch, per_device, world, global_batch // per_step, max_length)


PLAN_FILE = "coig_writer_batch.json"


def save_plan(plan: BatchPlan, folder: Path) -> None:
    (folder / PLAN_FILE).write_text(json.dumps(asdict(plan)), "utf-8")


def check_resume(plan: BatchPlan, checkpoint: Path, output_dir: Path) -> None:
    """Refuse to continue a checkpoint made with another global batch, world or max length."""
    f = checkpoint / PLAN_FILE
    if not f.exists():
        return
    old = json.loads(f.read_text("utf-8"))
    diffs = [f"{k} {old[k]} (now {getattr(plan, k)})" for k in ("global_batch", "world", "max_length")
             if old.get(k) != getattr(plan, k)]
    if diffs:
        raise TrainError(
            f"{checkpoint.name} was trained with " + ", ".join(diffs) + "; resuming would change the "
            f"run's schedule. Keep its settings, or start fresh with another output_dir (or "
            f"`resume: false`, or delete the checkpoint-* folders in {output_dir}).")


def last_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete checkpoint: one killed while being written lacks the plan file (saved last)."""
    if not output_dir.is_dir():
        return None
    done = [p for p in output_dir.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()
            and (p / PLAN_FILE).exists() and (p / "trainer_state.json").exists()]
    return max(done, key=lambda p: int(p.name.split("-")[-1]), default=None)
