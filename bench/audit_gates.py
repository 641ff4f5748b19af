"""Does the gate tell a real triplet from a counterfactual one with a given model? Drives
`coig-writer construct audit-gates` over the hand-written triplets of the bundled texts with
every variant kind and prints the per-variant table: share caught (and by what), AUC of the
six-score sum original vs variant with its bootstrap CI, integer against expected scores, and
the originals' false-reject rate.

    .venv/bin/python bench/audit_gates.py --model qwen2.5-coder-1.5b              # all 10 texts
    .venv/bin/python bench/audit_gates.py --model qwen2.5-coder-0.5b --triplets 2

The store (`--db`, default under --out) keeps every verdict and LLM answer: a rerun with the
same model and config resumes. The JSON report, page and plot go to --out.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from coig_writer.construct.audit_page import auc_text, counts_text

ROOT = Path(__file__).resolve().parents[1]
GOLD = ROOT / "src/coig_writer/data/sample/triplets_zh.jsonl"


def table(rep: dict) -> str:
    o = rep["originals"]
    lines = [f"originals: {o['judged']} judged, {o['not_accepted']} not accepted (false-reject "
             f"rate {o['false_reject_rate']:.0%}; {o['not_accepted_by'] or '-'})",
             "",
             "| variant | seen by | caught | by | AUC argmax [95% CI] | AUC expected [95% CI] |",
             "|---|---|---|---|---|---|"]
    for v in rep["variants"]:
        lines.append(f"| {v['kind']} | {v['seen_by']} | {v['caught']}/{v['judged']} | "
                     f"{counts_text(v['caught_by'], 3)} | {auc_text(v['auc']['argmax'])} | "
                     f"{auc_text(v['auc']['expected'])} |")
    lines += [""] + [f"- {v['verdict']}" for v in rep["variants"]]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--file", type=Path, default=GOLD)
    ap.add_argument("--triplets", type=int, default=None, help="first N triplets (default all)")
    ap.add_argument("--variants", default="all")
    ap.add_argument("--config", type=Path, default=None)
    ap.add_argument("--backend", default="local")
    ap.add_argument("--base-url", default=None)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("out/audit_gates"))
    ap.add_argument("--db", type=Path, default=None)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "coig_writer.cli", "construct", "audit-gates",
           "--file", str(args.file), "--variants", args.variants, "--seed", str(args.seed),
           "--backend", args.backend, "--model", args.model, "--concurrency", str(args.concurrency),
           "--db", str(args.db or args.out / "audit.sqlite"), "--json",
           "--page", str(args.out / "audit.html"), "--plot", str(args.out / "audit.png")]
    cmd += ["--triplets", str(args.triplets)] if args.triplets else []
    cmd += ["--config", str(args.config)] if args.config else []
    cmd += ["--base-url", args.base_url] if args.base_url else []
    print("$ " + " ".join(cmd[2:]), flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1) or "{" not in proc.stdout:
        sys.exit(f"audit-gates failed (exit {proc.returncode}):\n{proc.stdout}")
    rep = json.loads(proc.stdout[proc.stdout.index("{"):])
    (args.out / "audit.json").write_text(json.dumps(rep, ensure_ascii=False, indent=2), "utf-8")
    calls = sum(a["calls"] for a in rep.get("accounting") or [])
    hits = sum(a["cache_hits"] for a in rep.get("accounting") or [])
    print(f"model {rep['model']}, score rule {rep['score_rule']}, {rep['input']['triplets']} "
          f"triplets, seed {rep['seed']}, CI: {rep['ci']['method']}, {rep['ci']['rounds']} rounds")
    print(table(rep))
    print(f"\n{calls} LLM calls ({hits} from the cache) in {wall:.0f} s; pending {rep['pending']}; "
          f"errors {len(rep.get('errors') or {})}; report {args.out / 'audit.json'}, page "
          f"{args.out / 'audit.html'}")
    if proc.returncode:
        sys.exit(1)


if __name__ == "__main__":
    main()
