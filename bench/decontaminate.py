"""Decontamination at corpus scale: `data decontaminate` over N synthetic triplets against every
bundled and benchmark prompt (bundled-zh, bundled-en, WritingBench, Arena-Hard creative).

Writes a seeded triplet file (Chinese prompts of 20-80 characters and texts of 200-1,200
characters from a Zipf vocabulary over common characters; one in ten English, from a Zipf
vocabulary of letter strings) with P planted leaks: a text or prompt that quotes 40 characters
or 12 words of a random eval prompt. Then:
  - ours: `coig-writer data decontaminate --file triplets.jsonl --out flags.jsonl` in its own
    process (reading and validating the file, the index, the scan, the report);
  - reference: pairwise comparison (each triplet's n-gram set intersected with each eval
    prompt's n-gram set, the naive method) on a sample of S triplets, extrapolated to N.
Prints seconds, triplets per second, the ratio, and recall / false flags on the planted leaks.

    nice python bench/decontaminate.py --n 100000 --planted 200     # the recorded run
    python bench/decontaminate.py --n 5000 --planted 20             # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from coig_writer.dataset.decontaminate import (  # noqa: E402
    DEFAULT_SETS,
    NgramConfig,
    _han_grams,
    _word_grams,
    cut,
    load_eval_sets,
)


def make_triplets(path: Path, n: int, planted: int, prompts: list, seed: int) -> set[str]:
    rng = np.random.default_rng(seed)
    chars = np.array([chr(c) for c in range(0x4E00, 0x4E00 + 3500)], dtype=object)
    zh_vocab = np.array(["".join(rng.choice(chars, size=k)) for k in
                         rng.choice([1, 2, 2, 3], size=20_000)], dtype=object)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"), dtype=object)
    en_vocab = np.array(["".join(rng.choice(letters, size=k)) for k in
                         rng.integers(2, 9, size=20_000)], dtype=object)
    zipf = 1.0 / np.arange(1, 20_001) ** 1.05
    zipf /= zipf.sum()

    def text(lang: str, n_chars: int) -> str:
        if lang == "zh":
            words = rng.choice(zh_vocab, size=n_chars // 2, p=zipf)
            return "，".join("".join(words[i:i + 8]) for i in range(0, len(words), 8)) + "。"
        return " ".join(rng.choice(en_vocab, size=n_chars // 6, p=zipf)) + "."

    leaks = set(rng.choice(n, size=planted, replace=False).tolist())
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            lang = "en" if i % 10 == 9 else "zh"
            row = {"id": f"t{i}", "query": text(lang, int(rng.integers(20, 80))),
                   "thought": text(lang, 300), "answer": text(lang, int(rng.integers(200, 1200)))}
            if i in leaks:
                p = prompts[int(rng.integers(len(prompts)))]
                quote = (p.prompt[:40] if p.lang == "zh" and p.text_lang in (None, "zh")
                         else " ".join(p.prompt.split()[:12]))
                field = "answer" if i % 2 else "query"
                row[field] = row[field][:100] + quote + row[field][100:]
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return {f"t{i}" for i in leaks}


def pairwise(path: Path, prompts: list, sample: int, cfg: NgramConfig) -> float:
    """Seconds per triplet of the naive method: every triplet against every prompt's set."""
    psets = []
    for p in prompts:
        han, words = cut(p.prompt)
        psets.append(set(_han_grams(han, cfg.zh_n)) | set(_word_grams(words, cfg.en_n)))
    rows = [json.loads(line) for _, line in zip(range(sample), path.open(encoding="utf-8"), strict=False)]
    t0 = time.process_time()
    for r in rows:
        grams = set()
        for fld in ("query", "answer"):
            han, words = cut(r[fld])
            grams |= set(_han_grams(han, cfg.zh_n)) | set(_word_grams(words, cfg.en_n))
        _ = [j for j, ps in enumerate(psets) if not grams.isdisjoint(ps)]
    return (time.process_time() - t0) / len(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--planted", type=int, default=200)
    ap.add_argument("--sample", type=int, default=500, help="triplets for the pairwise reference")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    prompts, counts, missing = load_eval_sets(DEFAULT_SETS)
    if missing:
        sys.exit(f"eval sets missing: {missing}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "triplets.jsonl"
        leaks = make_triplets(path, args.n, args.planted, prompts, args.seed)
        flags = Path(tmp) / "flags.jsonl"
        cmd = [sys.executable, "-m", "coig_writer.cli", "data", "decontaminate", "--db",
               str(Path(tmp) / "s.sqlite"), "--file", str(path), "--out", str(flags)]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        t0, c0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)
        flagged = {json.loads(line)["item_id"] for line in flags.open(encoding="utf-8")}
        per = pairwise(path, prompts, args.sample, NgramConfig())
    print(f"eval prompts: {counts} ({sum(counts.values())})")
    print(f"ours: {args.n} triplets in {wall:.1f} s wall, {cpu:.1f} CPU-s "
          f"({args.n / cpu:,.0f} triplets per CPU-second), peak RSS {c1.ru_maxrss / 1024:.0f} MB")
    print(f"pairwise reference: {per * 1e3:.2f} ms per triplet -> {per * args.n:.0f} CPU-s for "
          f"{args.n}; ratio pairwise/ours {per * args.n / cpu:.1f}x")
    print(f"planted leaks caught {len(leaks & flagged)}/{len(leaks)}, other triplets flagged "
          f"{len(flagged - leaks)}")


if __name__ == "__main__":
    main()
