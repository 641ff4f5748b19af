"""What the prefix-shared prompt layout saves on the embedded engine, through the CLI.

Runs `coig-writer construct demo` (bundled sample, embedded model, fresh store each time, every
text through every stage, the demo's own answer budgets unless `--budgets short`) under three
conditions (`--conditions`), in alternating order over `--rounds` rounds in one run:
  shared          the shared layout (templates v2), the engine's prompt cache on (the default)
  shared-nocache  the same prompts with the engine's prompt cache off
  legacy          the old layout (templates v1), prompt cache on
and reports per condition: prompt tokens and the share the engine served from its cache (as
reported per call in the store), generated tokens, time per triplet (the run's own elapsed time
over its triplets), and time to the first triplet on screen (from the command's start, model
load included). Then the five stage calls of one ~2,000-character text as the pipeline renders them
(fixed prompt and reasoning, answers cut to one token), in both layouts with the cache on:
prompt tokens per triplet, and how many had to be computed (without the cache: all of them).

    .venv/bin/python bench/prefix_cache.py --model qwen2.5-coder-1.5b --max-rounds 1 \
        --conditions shared,legacy --rounds 2 --part demo | tee pc.log   # the demo as users run it
    .venv/bin/python bench/prefix_cache.py --texts 2 --max-rounds 0 --budgets short --rounds 1
    .venv/bin/python bench/prefix_cache.py --part long
    .venv/bin/python bench/prefix_cache.py --summarize pc.log   # the table again from a log
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from coig_writer.store import Store

SAMPLE = Path(__file__).resolve().parents[1] / "src/coig_writer/data/sample/classical_zh.jsonl"
CONDITIONS = {"shared": ["--layout", "shared"],
              "shared-nocache": ["--layout", "shared", "--no-prompt-cache"],
              "legacy": ["--layout", "legacy"]}
FIRST = re.compile(r"cw-\S+ \[(accepted|rejected|needs_review)\]")


def bench_config(path: Path, max_rounds: int, budgets: str) -> Path:
    """Every text goes through all stages (no screen threshold), so each condition makes the
    same triplets. Budgets "demo": the demo's own answer budgets, retries and checks, i.e. the
    run a user gets; "short": short answers and no retries, to isolate prompt processing."""
    cfg: dict = {"screen_threshold": 0, "max_rounds": max_rounds}
    if budgets == "short":
        cfg |= {"min_reasoning_chars": 20, "retries": 0, "stages": {
            "screen": {"max_tokens": 80},
            "reconstruct_prompt": {"temperature": 0.7, "max_tokens": 120},
            "reasoning": {"temperature": 0.7, "max_tokens": 200},
            "validate": {"max_tokens": 100}, "score": {"max_tokens": 120}}}
    path.write_text(yaml.safe_dump(cfg), "utf-8")
    return path


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "coig_writer.cli", *args]


def store_figures(db: Path) -> dict:
    """Prompt, cached and completion tokens of every call, from the store; the run's time."""
    with Store(db) as store:
        rows = store.db.execute("SELECT usage, latency_s FROM llm_cache WHERE usage IS NOT NULL")
        usage, latencies = [], []
        for u, lat in rows:
            usage.append(json.loads(u))
            latencies.append(lat)
        statuses = store.construct.count_triplets()
        triplets = sum(statuses.values())
        failed = store.db.execute("SELECT COUNT(*) FROM stage_results WHERE "
                                  "json_extract(data, '$.ok') = 0").fetchone()[0]
        checks = sum(1 for t in store.construct.iter_triplets() for r in t.reasons
                     if r.startswith(("reasoning", "prompt copies", "requirement", "decision")))
        run = [r for r in store.runs.runs() if r["kind"] == "construct"][-1]
    prompt = sum(int(u.get("prompt_tokens") or 0) for u in usage)
    cached = sum(int((u.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
                 for u in usage)
    reported = sum("cached_tokens" in (u.get("prompt_tokens_details") or {}) for u in usage)
    per_call = [[int(u.get("prompt_tokens") or 0)
                 - int((u.get("prompt_tokens_details") or {}).get("cached_tokens") or 0),
                 int(u.get("completion_tokens") or 0), lat] for u, lat in zip(usage, latencies, strict=True)]
    elapsed = (run["summary"] or {}).get("elapsed_s")
    return {"calls": len(usage), "reported": reported, "triplets": triplets,
            "statuses": statuses, "failed_stages": failed, "check_problems": checks,
            "prompt": prompt,
            "cached": cached, "completion": sum(int(u.get("completion_tokens") or 0)
                                                for u in usage),
            "run_s": elapsed, "per_triplet_s": elapsed / triplets if triplets and elapsed else None,
            "per_call": per_call}


def demo(work: Path, name: str, rnd: int, args: argparse.Namespace, cfg: Path) -> dict:
    db = work / f"{name}-{rnd}.sqlite"
    cmd = cli("construct", "demo", "--db", str(db), "--limit", str(args.texts), "--max-rounds",
              str(args.max_rounds), "--model", args.model, "--out", str(work / f"{name}.jsonl"),
              "--config", str(cfg), *CONDITIONS[name])
    env = {**os.environ, "COLUMNS": "200"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    first = None
    for line in proc.stdout:
        if first is None and FIRST.search(line):
            first = time.perf_counter() - t0
    if proc.wait() != 0:
        raise SystemExit(f"{name}: construct demo failed (exit {proc.returncode})")
    return {"wall_s": time.perf_counter() - t0, "first_s": first, **store_figures(db)}


PROMPT = "写一组古典诗词的读后随笔：选五首唐诗，每首一段，写出意象、情感与时代背景，语言平实，约八百字。"
REASONING = ("用户想要一组读后随笔。首先我需要确定选篇：思乡、送别、边塞、山水各取一首，最后一首收束。"
             "结构上每首一段，先写意象，再写情感，最后点出时代背景；语言平实，不堆砌辞藻。") * 3


def long_text(layout: str, args: argparse.Namespace) -> dict:
    """The five stage calls of one ~2,000-character text as the pipeline renders them, answers
    cut to one token (the prompt is what is measured), the prompt cache on: prompt tokens and
    the cached tokens the engine reports per call."""
    import asyncio

    from coig_writer.construct.config import ConstructConfig, StageParams
    from coig_writer.construct.pipeline import ConstructPipeline
    from coig_writer.llm import make_backend
    from coig_writer.records import Provenance, SourceText

    rows = [json.loads(line) for line in SAMPLE.read_text("utf-8").splitlines()]
    body, i = "", 0
    while len(body) < 2000:
        r = rows[i % len(rows)]
        body += f"{r['title']}（{r.get('author', '')}）\n{r['text']}\n\n"
        i += 1
    body = body.strip()
    one = StageParams(max_tokens=1, max_tokens_cap=1)
    cfg = ConstructConfig(layout=layout, retries=0, stages={s: one for s in (
        "screen", "reconstruct_prompt", "reasoning", "validate", "score")})
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "long.sqlite") as store:
        src = SourceText(id="long", text=body, provenance=Provenance(title="诗选"))
        pipe = ConstructPipeline(store, make_backend("local", model=args.model), cfg)
        common = {"article": body, "title": "诗选"}

        async def go() -> None:
            try:
                await pipe.run_stage("screen", src.id, 0, "bench", genres=pipe.genre_listing,
                                     **common)
                await pipe.run_stage("reconstruct_prompt", src.id, 0, "bench", genre_name="诗歌",
                                     feedback="", **common)
                await pipe.run_stage("reasoning", src.id, 0, "bench", prompt=PROMPT, feedback="",
                                     **common)
                for stage in ("validate", "score"):
                    await pipe.run_stage(stage, src.id, 0, "bench", prompt=PROMPT,
                                         reasoning=REASONING, **common)
            finally:
                await pipe.llm.aclose()

        asyncio.run(go())
        usage = [json.loads(u) for (u,) in store.db.execute(
            "SELECT usage FROM llm_cache ORDER BY rowid")]
    prompt = sum(u["prompt_tokens"] for u in usage)
    cached = sum((u.get("prompt_tokens_details") or {}).get("cached_tokens") or 0 for u in usage)
    return {"chars": len(body), "prompt": prompt, "cached": cached, "calls": len(usage)}


LINE = re.compile(r"^round (\d+) (\S+): (\{.*\})$")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--texts", type=int, default=2)
    ap.add_argument("--max-rounds", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=1, help="alternating rounds of the conditions")
    ap.add_argument("--part", choices=("demo", "long", "both"), default="both")
    ap.add_argument("--budgets", choices=("demo", "short"), default="demo",
                    help="demo: the demo's own answer budgets (the run users get); short: short "
                         "answers, no retries (prompt processing only)")
    ap.add_argument("--conditions", default=",".join(CONDITIONS),
                    help="comma-separated subset of: " + ", ".join(CONDITIONS))
    ap.add_argument("--summarize", type=Path, help="print the table from the round lines of a log")
    args = ap.parse_args()
    conditions = [c for c in args.conditions.split(",") if c]
    if unknown := set(conditions) - set(CONDITIONS):
        ap.error(f"unknown condition(s): {', '.join(sorted(unknown))}")
    results: dict[str, list[dict]] = {n: [] for n in CONDITIONS}
    if args.summarize:
        for line in args.summarize.read_text("utf-8").splitlines():
            if m := LINE.match(line):
                results[m.group(2)].append(json.loads(m.group(3)))
        return report(results, {})
    longs = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cfg = bench_config(work / "bench.yaml", args.max_rounds, args.budgets)
        for rnd in range(args.rounds if args.part != "long" else 0):
            order = conditions if rnd % 2 == 0 else conditions[::-1]
            for name in order:
                r = demo(work, name, rnd, args, cfg)
                results[name].append(r)
                print(f"round {rnd} {name}: {json.dumps(r)}", flush=True)
    if args.part != "demo":
        longs = {layout: long_text(layout, args) for layout in ("shared", "legacy")}
    if args.part != "long":
        print(f"\n{args.model}, {args.texts} sample texts, max_rounds {args.max_rounds}, "
              f"{args.budgets} budgets, {args.rounds} round(s)")
    report(results, longs)


def report(results: dict[str, list[dict]], longs: dict[str, dict]) -> None:
    results = {n: rs for n, rs in results.items() if rs}
    agg = {}
    for name, rs in results.items():
        n_trip = sum(r["triplets"] for r in rs)
        prompt, cached = sum(r["prompt"] for r in rs), sum(r["cached"] for r in rs)
        agg[name] = {"per_triplet_s": sum(r["run_s"] for r in rs) / n_trip,
                     "first_s": sum(r["first_s"] or r["wall_s"] for r in rs) / len(rs),
                     "share": cached / prompt if prompt else 0.0,
                     "prompt_per_triplet": prompt / n_trip,
                     "computed_per_triplet": (prompt - cached) / n_trip,
                     "generated_per_triplet": sum(r["completion"] for r in rs) / n_trip}
    if agg:
        print(f"{'condition':<16}{'cached share':>13}{'prompt tok/trip':>16}"
              f"{'computed/trip':>14}{'generated/trip':>15}{'s/triplet':>11}"
              f"{'first triplet s':>16}")
    for name, a in agg.items():
        print(f"{name:<16}{a['share']:>13.0%}{a['prompt_per_triplet']:>16.0f}"
              f"{a['computed_per_triplet']:>14.0f}{a['generated_per_triplet']:>15.0f}"
              f"{a['per_triplet_s']:>11.1f}{a['first_s']:>16.1f}")
    ref = agg.get("shared")
    for other in ("legacy", "shared-nocache"):
        o = agg.get(other)
        if not ref or not o:
            continue
        print(f"{other} / shared: time per triplet x{o['per_triplet_s'] / ref['per_triplet_s']:.2f}, "
              f"first triplet x{o['first_s'] / ref['first_s']:.2f}, computed prompt tokens "
              f"x{o['computed_per_triplet'] / max(ref['computed_per_triplet'], 1):.2f}, "
              f"generated tokens x{o['generated_per_triplet'] / max(ref['generated_per_triplet'], 1):.2f}")
    split_time(results)
    for layout, r in longs.items():
        print(f"long text ({r['chars']} chars), {layout} layout: {r['prompt']} prompt tokens per "
              f"triplet ({r['calls']} calls); computed with the prompt cache "
              f"{r['prompt'] - r['cached']} ({r['cached'] / r['prompt']:.0%} from the cache), "
              f"without it all {r['prompt']}")


def split_time(results: dict[str, list[dict]]) -> None:
    """Least-squares fit over every call of every run: latency = a x computed prompt tokens +
    b x generated tokens + c. Splits each condition's call time into prompt processing and
    generation, and prints what legacy would take with the shared layout's generation time:
    the part of the ratio that prompt caching alone explains."""
    import numpy as np

    calls = {n: [c for r in rs for c in r.get("per_call", [])] for n, rs in results.items()}
    every = [c for cs in calls.values() for c in cs]
    if len(every) < 4 or len(calls) < 2:
        return
    x = np.array([[c[0], c[1], 1.0] for c in every])
    y = np.array([c[2] for c in every])
    coef = np.linalg.lstsq(x, y, rcond=None)[0]
    r2 = 1 - ((y - x @ coef) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    print(f"fit over {len(every)} calls (R^2 {r2:.2f}): {1 / coef[0]:.1f} computed prompt "
          f"tokens/s, {1 / coef[1]:.1f} generated tokens/s, {coef[2]:.2f} s per call")
    parts = {}
    for name, cs in calls.items():
        runs = len(results[name])
        m = np.array([[c[0], c[1], 1.0] for c in cs]) * coef / runs
        parts[name] = (m[:, 0].sum(), m[:, 1].sum(), m[:, 2].sum())
        print(f"  {name}: per run {parts[name][0]:.0f} s prompt processing + "
              f"{parts[name][1]:.0f} s generation + {parts[name][2]:.0f} s per-call overhead")
    if "shared" in parts and "legacy" in parts:
        sp, sg, so = parts["shared"]
        lp, _, lo = parts["legacy"]
        print(f"  legacy with the shared layout's generation: {lp + sg + lo:.0f} s against "
              f"{sp + sg + so:.0f} s: the prompt side alone x{(lp + sg + lo) / (sp + sg + so):.2f}")


if __name__ == "__main__":
    main()
