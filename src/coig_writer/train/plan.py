"""Plans before any GPU is rented: memory per device and training time for a model shape, a
data size and a device count; the paper's five models as a table."""

from __future__ import annotations

from dataclasses import dataclass

from .memory import GIB, PEAK_BF16, Shape, project, project_run

KNOWN_SHAPES = {  # from the models' config.json, so no download is needed to plan
    "qwen2.5-7b": Shape(vocab=152064, hidden=3584, intermediate=18944, layers=28, heads=28, kv_heads=4,
                        tied=False),
    "qwen2.5-1.5b": Shape(vocab=151936, hidden=1536, intermediate=8960, layers=28, heads=12, kv_heads=2,
                          tied=True),
    "qwen2.5-0.5b": Shape(vocab=151936, hidden=896, intermediate=4864, layers=24, heads=14, kv_heads=2,
                          tied=True),
}
# the paper's five fine-tunes of Qwen2.5-7B-Instruct: 1,665 creative triplets + general samples
PAPER_MIXTURES = {"CW": 1_665, "CW+2k": 3_665, "CW+10k": 11_665, "CW+20k": 21_665, "G": 20_000}


@dataclass(frozen=True)
class PlanRow:
    name: str
    samples: int
    devices: int
    strategy: str
    optimizer: str
    memory_gib: float
    device_gib: float
    hours: float

    @property
    def fits(self) -> bool:
        return self.memory_gib <= self.device_gib * 0.95


def plan_row(name: str, shape: Shape, *, samples: int, mean_tokens: float, devices: int, strategy: str,
             device_gib: float, gpu: str = "H100", mfu: float = 0.35, epochs: float = 3,
             max_length: int = 8192, per_device: int = 1, optimizer: str = "adamw_fused") -> PlanRow:
    proj = project(shape, world=devices, strategy=strategy, per_device=per_device, max_length=max_length,
                   optimizer=optimizer)
    hours = project_run(shape, samples=samples, mean_tokens=mean_tokens, epochs=epochs, devices=devices,
                        peak_flops=PEAK_BF16[gpu], mfu=mfu, max_length=max_length)
    return PlanRow(name, samples, devices, strategy, optimizer, proj.total / GIB, device_gib, hours)


def paper_plan(mean_tokens: float = 2048, mfu: float = 0.35) -> list[PlanRow]:
    """Qwen2.5-7B full fine-tuning (3 epochs, 8k) for the five mixtures on 1 x H200 (fused and
    8-bit AdamW) and 8 x H100 (ZeRO-3)."""
    shape = KNOWN_SHAPES["qwen2.5-7b"]
    rows = []
    for name, n in PAPER_MIXTURES.items():
        for optimizer in ("adamw_fused", "adamw_8bit"):
            rows.append(plan_row(name, shape, samples=n, mean_tokens=mean_tokens, devices=1,
                                 strategy="single", device_gib=141 * 1e9 / GIB, gpu="H200", mfu=mfu,
                                 optimizer=optimizer))
        rows.append(plan_row(name, shape, samples=n, mean_tokens=mean_tokens, devices=8, strategy="zero3",
                             device_gib=80 * 1e9 / GIB, gpu="H100", mfu=mfu))
    return rows
