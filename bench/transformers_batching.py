"""Batched vs one-at-a-time generation with the in-process transformers backend, through the
CLI (`eval generate --backend transformers`), on the tiny random Qwen2 (or --model DIR).

The same N prompts are answered twice into fresh stores: with --concurrency 1 (one request per
`generate`) and with --concurrency C (the backend gathers concurrent requests into batches).
Greedy, fixed max_tokens, every answer cut at max_tokens so both runs generate the same number
of tokens. Prints the wall time of each run and the ratio, alternating the order over rounds.

    PYTHONPATH=src .venv/bin/python bench/transformers_batching.py [--prompts 16] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from coig_writer.train.tiny import build_tiny_model


def run(cli: list[str], db: Path, model: Path, prompts: Path, concurrency: int, tokens: int
        ) -> float:
    subprocess.run(cli + ["eval", "prompts", str(prompts), "--db", str(db)], check=True,
                   capture_output=True)
    t0 = time.monotonic()
    subprocess.run(cli + ["eval", "generate", "--name", "m", "--db", str(db), "--backend",
                          "transformers", "--model", str(model), "--temperature", "0",
                          "--max-tokens", str(tokens), "--max-tokens-cap", str(tokens),
                          "--concurrency", str(concurrency)], check=True, capture_output=True)
    return time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--model", type=Path, default=None)
    args = ap.parse_args()
    cli = [sys.executable, "-m", "coig_writer.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        model = args.model or build_tiny_model(t / "tiny")
        prompts = t / "p.jsonl"
        prompts.write_text("".join(json.dumps({"id": f"p{i}", "lang": "en", "prompt":
                                               f"Write a short poem about the number {i}."})
                                   + "\n" for i in range(args.prompts)), "utf-8")
        times: dict[int, list[float]] = {1: [], args.concurrency: []}
        for r in range(args.rounds):
            order = [1, args.concurrency] if r % 2 == 0 else [args.concurrency, 1]
            for c in order:
                times[c].append(run(cli, t / f"s{r}-{c}.sqlite", model, prompts, c,
                                    args.max_tokens))
        one, many = statistics.median(times[1]), statistics.median(times[args.concurrency])
        print(f"{args.prompts} prompts x {args.max_tokens} tokens, {args.rounds} rounds "
              f"(CLI start-up and model load included)")
        print(f"concurrency 1: {one:.1f} s; concurrency {args.concurrency}: {many:.1f} s; "
              f"batched / one at a time = {many / one:.2f}")


if __name__ == "__main__":
    main()
