"""Embedded engine settings on this machine: n_parallel (slots decoded together) and threads.

For each setting it starts the engine with the model, sends the same 4 construction-like
requests (a reasoning-stage prompt over 4 sample texts, `--max-tokens` each) at concurrency equal
to the slots, and prints wall time, completion tokens/s and the ratio to the first setting.

    .venv/bin/python bench/engine_settings.py --model qwen2.5-coder-0.5b --settings 1:2 2:2 4:2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from coig_writer.llm import ChatRequest
from coig_writer.llm.engine import LocalBackend
from coig_writer.llm.models import ensure_model
from coig_writer.prompts import load_template

SAMPLE = Path(__file__).resolve().parents[1] / "src/coig_writer/data/sample/classical_zh.jsonl"


async def run(model: Path, slots: int, threads: int, max_tokens: int) -> tuple[float, int]:
    be = LocalBackend(model, name="bench", n_parallel=slots, n_threads=threads, n_ctx=8192)
    tpl = load_template("reasoning", "zh")
    texts = [json.loads(x)["text"] for x in SAMPLE.read_text("utf-8").splitlines()[:4]]
    reqs = [ChatRequest.build(tpl.render(prompt="写一首古诗", article=t, feedback=""),
                              max_tokens=max_tokens, temperature=0.0, seed=0) for t in texts]
    await be.chat(ChatRequest.build([{"role": "user", "content": "hi"}], max_tokens=1))  # load
    sem = asyncio.Semaphore(slots)

    async def one(r: ChatRequest) -> int:
        async with sem:
            return (await be.chat(r)).completion_tokens

    t0 = time.perf_counter()
    toks = sum(await asyncio.gather(*(one(r) for r in reqs)))
    wall = time.perf_counter() - t0
    await be.aclose()
    return wall, toks


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--settings", nargs="+", default=["1:2", "2:2", "4:2"],
                    help="slots:threads pairs")
    ap.add_argument("--max-tokens", type=int, default=128)
    args = ap.parse_args()
    path = ensure_model(args.model)
    base = None
    print(f"{'slots':>5} {'threads':>7} {'wall s':>7} {'tokens':>6} {'tok/s':>6} {'vs first':>8}")
    for s in args.settings:
        slots, threads = (int(x) for x in s.split(":"))
        wall, toks = asyncio.run(run(path, slots, threads, args.max_tokens))
        base = base or wall
        print(f"{slots:>5} {threads:>7} {wall:>7.1f} {toks:>6} {toks / wall:>6.1f} "
              f"{base / wall:>8.2f}x", flush=True)


if __name__ == "__main__":
    main()
