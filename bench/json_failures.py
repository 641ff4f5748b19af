"""JSON failure rate of the embedded small model on the JSON stages, with and without the
JSON Schema constraint (same texts, same prompts, same seeds; first answers only, no retries).

For each sample text it asks the screen stage, then validate and score for a fixed prompt and
reasoning, once with `response_format: json_object` and once with the stage's JSON Schema, and
counts answers the stage parser rejects (unparseable, or a required field missing/invalid).

    .venv/bin/python bench/json_failures.py --model qwen2.5-coder-0.5b --texts 10 --layout shared

`--layout legacy` renders the templates v1 (each stage its own system message first).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from coig_writer.construct.config import ConstructConfig
from coig_writer.construct.stages import stage as stage_named
from coig_writer.genres import load_taxonomy
from coig_writer.llm import ChatRequest, make_backend, parse_json_object
from coig_writer.prompts import compose, load_template

SAMPLE = Path(__file__).resolve().parents[1] / "src/coig_writer/data/sample/classical_zh.jsonl"
PROMPT = "写一首五言绝句，描写秋夜思乡，意象清冷，结尾含蓄。"
REASONING = ("用户要一首思乡的五言绝句。我先选意象：月光、霜、故乡。起句写景，承句设疑，"
             "转句抬头望月，合句低头思乡，情感由景入情，含蓄收束。")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--texts", type=int, default=10)
    ap.add_argument("--layout", choices=("shared", "legacy"), default="shared")
    args = ap.parse_args()
    cfg = ConstructConfig(layout=args.layout)
    be = make_backend("local", model=args.model, n_ctx=8192)
    rows = [json.loads(line) for line in SAMPLE.read_text("utf-8").splitlines()][: args.texts]
    genres = load_taxonomy().listing("zh")
    fails = {False: 0, True: 0}
    total = 0
    t0 = time.perf_counter()
    for row in rows:
        text = row["text"]
        for stage in ("screen", "validate", "score"):
            tpl = load_template(cfg.template_name(stage), "zh")
            variables = {"article": text, "title": row.get("title", ""), "genres": genres,
                         "prompt": PROMPT, "reasoning": REASONING}
            msgs = compose(load_template(cfg.template_name("construct_prefix"), "zh"), tpl,
                           **variables) if tpl.prefix is not None else tpl.render(**variables)
            total += 1
            for schema in (False, True):
                req = ChatRequest.build(msgs, json_mode=True, temperature=0.0,
                                        max_tokens=cfg.stages[stage].max_tokens, seed=0,
                                        json_schema=stage_named(stage).schema if schema else None)
                resp = await be.chat(req)
                try:
                    stage_named(stage).parse(parse_json_object(resp.text))
                except ValueError as e:
                    fails[schema] += 1
                    print(f"{'schema' if schema else 'json_object'} {stage}: {e}: "
                          f"{resp.text[:120]!r}", flush=True)
    await be.aclose()
    print(f"{args.model}, {args.layout} layout: {total} JSON answers per mode in "
          f"{time.perf_counter() - t0:.0f}s; "
          f"failures json_object {fails[False]}/{total} ({fails[False] / total:.0%}), "
          f"json_schema {fails[True]}/{total} ({fails[True] / total:.0%})")


if __name__ == "__main__":
    asyncio.run(main())
