"""Training throughput through the CLI path (`coig-writer train run`), same run, same data.

CPU (default without CUDA): a small random-weight Qwen2 (hidden 256, 4 layers, real Qwen
tokenizer), 64 samples of varied length; padded vs padding-free micro-batches (tokens/s counts
real tokens only, so the ratio is the padding saved) and padding-free on 1 vs 2 processes
(torchrun, gloo).

GPU (--gpu): full fine-tuning of Qwen2.5-Coder-1.5B (converted from the embedded GGUF when it is
in ~/.cache/coig-writer, else random weights in its shape: speed and memory do not depend on the
values) at max length 8192, global batch 32, padding-free: tokens/s/GPU, MFU, peak memory, and
from the measured bytes per parameter the projected memory of Qwen2.5-7B on 1 x 141 GB and
8 x 80 GB. Needs trl on the GPU machine.

    PYTHONPATH=src .venv/bin/python bench/train_throughput.py [--steps 4] [--gpu] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from coig_writer.train.memory import GIB, Shape, project
from coig_writer.train.plan import KNOWN_SHAPES
from coig_writer.train.tiny import build_tiny_model, write_tiny_data

SRC = str(Path(__file__).resolve().parents[1] / "src")


def run_cli(cfg: dict, work: Path, name: str, extra: list[str]) -> dict:
    conf = work / f"{name}.yaml"
    conf.write_text(yaml.safe_dump({**cfg, "output_dir": str(work / name)}), "utf-8")
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "coig_writer.cli", "train", "run", "--config", str(conf), "--json", *extra]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
    if r.returncode:
        sys.exit(f"{name} failed:\n{r.stderr[-4000:]}")
    result = json.loads(r.stdout[r.stdout.index("{"):])
    rows = [json.loads(x) for x in (work / name / "loss.jsonl").read_text().splitlines()]
    steady = [x for x in rows if "tokens_per_s" in x][1:]  # the first step includes warm-up
    if steady:
        result["steady_tokens_per_s"] = sum(x["tokens_per_s"] for x in steady) / len(steady)
        result["steady_step_s"] = sum(x["step_time_s"] for x in steady) / len(steady)
    return result


def cpu_bench(work: Path, steps: int) -> None:
    model = build_tiny_model(work / "model", hidden=256, layers=4)
    data = write_tiny_data(work / "data.jsonl", 64, spread=16)
    base = {"model": str(model), "data": str(data), "global_batch": 8, "per_device_batch": 4,
            "max_length": 1024, "bf16": False, "logging_steps": 1, "max_steps": steps + 1,
            "save_steps": 10 ** 6, "epochs": 100}
    runs = [("padded", {"padding_free": False}, []), ("padding_free", {}, []),
            ("padding_free_2proc", {}, ["--nproc", "2"])]
    res = {name: run_cli({**base, **upd}, work, name, extra) for name, upd, extra in runs}
    print(f"{'run':<22} {'tokens/s':>10} {'s/step':>8}")
    for name, r in res.items():
        print(f"{name:<22} {r['steady_tokens_per_s']:>10,.0f} {r['steady_step_s']:>8.2f}")
    pf, pad, two = (res[k]["steady_tokens_per_s"] for k in ("padding_free", "padded", "padding_free_2proc"))
    print(f"padding-free / padded: {pf / pad:.2f}x; 2 processes / 1 process: {two / pf:.2f}x")


def long_data(path: Path, n: int, max_tokens: int) -> Path:
    """n samples whose lengths spread evenly from max_tokens/16 to about max_tokens."""
    rows = []
    for i in range(n):
        reps = max(1, int((i % 16 + 1) / 16 * max_tokens / 11))  # about 11 tokens per sentence
        rows.append({"prompt": [{"role": "user", "content": f"写一篇关于秋天的长文（{i}）"}],
                     "completion": [{"role": "assistant", "content": "秋风吹过山岗，落叶纷纷。" * reps}]})
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def gpu_bench(work: Path, steps: int) -> dict:
    from coig_writer.llm.models import model_path
    from coig_writer.train.convert import gguf_to_hf, random_model

    shape = KNOWN_SHAPES["qwen2.5-1.5b"]
    gguf = model_path("qwen2.5-coder-1.5b")
    if gguf.exists():
        model, source = gguf_to_hf(gguf, work / "model"), "embedded GGUF, dequantised"
    else:
        model, source = random_model(shape, work / "model"), "random weights in its shape"
    data = long_data(work / "data.jsonl", 32 * (steps + 1), 8000)
    cfg = {"model": str(model), "data": str(data), "global_batch": 32, "per_device_batch": 4,
           "max_length": 8192, "logging_steps": 1, "max_steps": steps + 1, "save_steps": 10 ** 6}
    r = run_cli(cfg, work, "qwen1.5b", [])
    run_config = json.loads((work / "qwen1.5b/run_config.json").read_text())
    n = run_config["params"]
    peak = r["peak_memory_gib"] * GIB
    act = Shape.of(json.loads((Path(model) / "config.json").read_text())).activation_bytes(4 * 8192, True)
    per_param = (peak - act) / n  # weights + gradients + optimizer + transients, measured
    big = KNOWN_SHAPES["qwen2.5-7b"]
    one = per_param * big.params + big.activation_bytes(4 * 8192, True)  # replicated, as measured
    act7 = big.activation_bytes(4 * 8192, True)
    eight = per_param * big.params / 8 + act7 + 2e9  # ZeRO-3 shards all states; 1e9 live bf16 params
    formula = project(big, world=8, strategy="zero3", per_device=4, max_length=8192).total
    out = {"model": f"Qwen2.5-Coder-1.5B ({source})", "tokens_per_s_per_gpu": r["steady_tokens_per_s"],
           "mfu": r.get("mfu"), "peak_memory_gib": r["peak_memory_gib"], "bytes_per_param": per_param,
           "qwen7b_1x141GB_gib": one / GIB, "qwen7b_1x141GB_fits": one < 141e9 * 0.95,
           "qwen7b_8x80GB_zero3_gib_per_gpu": eight / GIB, "qwen7b_8x80GB_zero3_formula_gib": formula / GIB,
           "steady_step_s": r["steady_step_s"]}
    for k, v in out.items():
        print(f"{k}: {v:,.3f}" if isinstance(v, float) else f"{k}: {v}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4, help="measured steps (one warm-up step more)")
    ap.add_argument("--gpu", action="store_true")
    ap.add_argument("--out", type=Path, help="write the GPU figures as JSON here")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if a.gpu:
            res = gpu_bench(Path(tmp), a.steps)
            if a.out:
                a.out.mkdir(parents=True, exist_ok=True)
                (a.out / "train_throughput_gpu.json").write_text(json.dumps(res, indent=1), "utf-8")
        else:
            cpu_bench(Path(tmp), a.steps)


if __name__ == "__main__":
    main()
