"""Pipeline throughput against the same server driven directly with the openai client.

Starts a llama.cpp server with the embedded 0.5B model, runs the construction pipeline over N
texts at concurrency C on an empty store (cold cache), then replays exactly the requests the
pipeline sent, straight through `AsyncOpenAI` at the same concurrency. Rounds alternate
(pipeline, direct, pipeline, direct, ...) and the ratio of medians is printed: overhead of our
orchestration, cache, parsing and persistence over raw HTTP calls. Not a test: machines are noisy.

    .venv/bin/python bench/throughput.py --items 3 --concurrency 2 --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from openai import AsyncOpenAI

from coig_writer.construct.config import ConstructConfig, StageParams
from coig_writer.construct.ingest import ingest
from coig_writer.construct.pipeline import ConstructPipeline
from coig_writer.construct.runner import run_local
from coig_writer.llm.models import ensure_model
from coig_writer.llm.openai_compat import OpenAICompatBackend
from coig_writer.llm.server import LlamaServer
from coig_writer.store import Store

SAMPLE = Path(__file__).resolve().parents[1] / "src/coig_writer/data/sample/classical_zh.jsonl"


def config() -> ConstructConfig:
    return ConstructConfig(max_rounds=0, screen_threshold=0, min_reasoning_chars=20, stages={
        "screen": StageParams(max_tokens=96), "reconstruct_prompt": StageParams(max_tokens=96),
        "reasoning": StageParams(max_tokens=160), "validate": StageParams(max_tokens=96),
        "score": StageParams(max_tokens=128)})


async def run_pipeline(base: str, items: int, conc: int, workdir: Path, i: int
                       ) -> tuple[float, list[dict]]:
    with Store(workdir / f"bench{i}.sqlite") as store:
        ingest([SAMPLE], store)
        be = OpenAICompatBackend(base, "bench", concurrency=conc)
        t0 = time.perf_counter()
        await run_local(ConstructPipeline(store, be, config()), limit=items, concurrency=conc)
        elapsed = time.perf_counter() - t0
        await be.aclose()
        return elapsed, [r["request"] for r in store.cache.cache_rows()]


async def run_direct(base: str, requests: list[dict], conc: int) -> float:
    client = AsyncOpenAI(base_url=base, api_key="none")
    sem = asyncio.Semaphore(conc)

    async def one(r: dict) -> None:
        kw = {"model": "bench", "messages": r["messages"], "temperature": r["temperature"],
              "max_tokens": r["max_tokens"], "seed": r["seed"]}
        if r["json_mode"]:
            kw["response_format"] = {"type": "json_object"}
        async with sem:
            await client.chat.completions.create(**kw)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(r) for r in requests))
    elapsed = time.perf_counter() - t0
    await client.close()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--items", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    pipe_t, direct_t = [], []
    with LlamaServer(ensure_model("qwen2.5-coder-0.5b"), alias="bench") as server, \
            tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            t, reqs = asyncio.run(run_pipeline(server.base_url, args.items, args.concurrency,
                                               Path(tmp), i))
            pipe_t.append(t)
            direct_t.append(asyncio.run(run_direct(server.base_url, reqs, args.concurrency)))
            print(f"round {i}: pipeline {t:.2f}s, direct {direct_t[-1]:.2f}s, "
                  f"{len(reqs)} requests, ratio {t / direct_t[-1]:.3f}")
    ratio = statistics.median(pipe_t) / statistics.median(direct_t)
    print(f"median pipeline/direct time ratio: {ratio:.3f} "
          f"(items={args.items}, concurrency={args.concurrency}, rounds={args.rounds})")


if __name__ == "__main__":
    main()
