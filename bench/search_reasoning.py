"""Reasoning search on the bundled sample: usefulness gain before and after, time per triplet.

The hand-written triplets of bench/usefulness.py (the texts of the bundled sample with a prompt
and a planning reasoning each) go into a fresh store; then `coig-writer construct
search-reasoning` runs in its own process with the embedded 0.5B model as generator and the same
0.5B GGUF through transformers as scorer (K candidates per step, N steps at most). Prints, per
triplet, the gain (clipped NLL with prompt only minus with prompt + reasoning) before and after,
steps, kept rewrites, candidates that failed the LLM-free checks, and seconds; then the mean
gain before and after (the reference is the same triplets before the search, in the same run).

    PYTHONPATH=src python bench/search_reasoning.py --limit 5 --steps 3 --candidates 2
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from coig_writer.llm.models import TEST_MODEL  # noqa: E402
from coig_writer.store import Store  # noqa: E402


def sample_triplets():
    spec = importlib.util.spec_from_file_location("bench_usefulness", ROOT / "bench/usefulness.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.sample_triplets()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=5)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--candidates", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.sqlite"
        with Store(db) as s:
            for t in sample_triplets()[:args.limit]:
                s.construct.put_triplet(t)
        cfg = Path(tmp) / "cfg.yaml"
        cfg.write_text(yaml.safe_dump({"search": {"max_tokens": 160}}), "utf-8")
        cmd = [sys.executable, "-m", "coig_writer.cli", "construct", "search-reasoning",
               "--db", str(db), "--backend", "local", "--model", TEST_MODEL, "--scorer",
               "transformers", "--scorer-model", TEST_MODEL, "--config", str(cfg),
               "--max-steps", str(args.steps), "--candidates", str(args.candidates)]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode:
            sys.exit(proc.stdout + proc.stderr)
        print(proc.stdout.strip().splitlines()[-1])
        with Store(db) as s:
            rows = s.search.results()
            titles = {t.id: t.provenance.title for t in s.construct.iter_triplets()}
    print(f"\n{'text':<20}{'gain before':>12}{'gain after':>12}{'steps':>7}{'kept':>6}"
          f"{'failed checks':>15}{'seconds':>9}")
    for r in rows:
        print(f"{titles[r['triplet_id']]:<20}{r['gain_before']:>+12.3f}{r['gain_after']:>+12.3f}"
              f"{r['steps']:>7}{r['kept']:>6}{r['rejected_by_checks']:>15}{r['seconds']:>9.1f}")
    before = statistics.fmean(r["gain_before"] for r in rows)
    after = statistics.fmean(r["gain_after"] for r in rows)
    touched = [r for r in rows if r["kept"]]
    print(f"\nmean gain {before:+.3f} -> {after:+.3f} over {len(rows)} triplets; "
          f"{len(touched)} improved"
          + (f" (their mean {statistics.fmean(r['gain_before'] for r in touched):+.3f} -> "
             f"{statistics.fmean(r['gain_after'] for r in touched):+.3f})" if touched else ""))
    per = statistics.fmean(r["seconds"] for r in rows)
    print(f"time: {per:.1f} s per triplet searched; whole command {wall:.0f} s (model loads "
          f"included)")


if __name__ == "__main__":
    main()
