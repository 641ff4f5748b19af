"""Record real raw answers of every construction stage for `tests/test_stages.py`.

Runs each stage of the shared layout on bundled texts with the embedded model, once with the
stage's own budget and once cut short (max_tokens 12: a real truncated answer), and writes
every answer with its finish reason to tests/data/stage_answers.jsonl. The test then runs each
stage's parser over them; nothing in the file is written by hand.

    .venv/bin/python scripts/capture_stage_answers.py --model qwen2.5-coder-0.5b --texts 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from coig_writer.construct.calls import ItemContext, StageCaller
from coig_writer.construct.config import ConstructConfig
from coig_writer.construct.stages import STAGES
from coig_writer.llm import make_backend
from coig_writer.store import Store

ROOT = Path(__file__).resolve().parents[1]
GOLD = ROOT / "src/coig_writer/data/sample/triplets_zh.jsonl"
OUT = ROOT / "tests/data/stage_answers.jsonl"


async def capture(model: str, texts: int, store: Store) -> list[dict]:
    be = make_backend("local", model=model)
    cfg = ConstructConfig(top_logprobs=0, structured_output=True)
    caller = StageCaller(store, be, cfg)
    rows = []
    gold = [json.loads(line) for line in GOLD.read_text("utf-8").splitlines()][:texts]
    try:
        for g in gold:
            ctx = ItemContext(item_id=g["id"], run_id="capture", article=g["answer"],
                              title=g.get("title", ""), genre_name="诗歌")
            variables = {**ctx.variables(), "prompt": g["query"], "reasoning": g["thought"]}
            for st in STAGES:
                for budget in (cfg.stages[st.name].max_tokens, 12):
                    req = caller.request(st, ctx, 0, variables).replace(max_tokens=budget)
                    resp = await be.chat(req)
                    rows.append({"stage": st.name, "item": g["id"], "max_tokens": budget,
                                 "finish_reason": resp.finish_reason, "text": resp.text,
                                 "model": be.model_id})
                    print(st.name, budget, resp.finish_reason, repr(resp.text[:80]), flush=True)
    finally:
        await be.aclose()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--texts", type=int, default=3)
    args = ap.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "c.sqlite") as store:
        rows = asyncio.run(capture(args.model, args.texts, store))
    OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    print(f"{len(rows)} answers -> {OUT}")


if __name__ == "__main__":
    main()
