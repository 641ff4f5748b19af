"""Reliability probes behind docs/reliability.md, through the CLI against loopback stubs:

  servers   `construct run --limit 4` against a server that fails in each way (HTTP 500, a body
            that is not JSON, reset, half-closed connection, no answer, 429 with Retry-After
            86400): exit code, wall time, requests received, the reason printed.
  two-runs  two `construct run` on one store, the second started while the first is working:
            requests, distinct requests, duplicates, and the calls in flight at the second's
            start (the bound the leases must keep duplicates under).

    .venv/bin/python bench/reliability_probes.py servers --flags="--max-failures 3 --timeout 5"
    .venv/bin/python bench/reliability_probes.py two-runs --texts 300 --latency 0.05
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.review_fixtures import StageStub  # noqa: E402
from tests.servers import FaultServer  # noqa: E402

from coig_writer.records import SourceText  # noqa: E402
from coig_writer.store import Store  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "250"}
TEXT = "床前明月光，疑是地上霜。举头望明月，低头思故乡。" * 8
MODES = [("500",), ("badjson",), ("reset",), ("halfclose",), ("hang",), ("retry-after", 86400)]


def store_with(path: Path, n: int) -> Path:
    with Store(path) as s:
        for i in range(n):
            s.corpus.add_source(SourceText(id=f"s{i:05d}", text=f"{TEXT}{i}"))
    return path


def run_args(db: Path, url: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "coig_writer.cli", "construct", "run", "--db", str(db),
            "--backend", "openai", "--base-url", url, "--model", "stub", *extra]


def servers(flags: str) -> None:
    print(f"construct run --limit 4 {flags}")
    print(f"{'server':<22} {'exit':>4} {'wall s':>7} {'requests':>8}  reason")
    for mode in MODES:
        with tempfile.TemporaryDirectory() as d, FaultServer([mode]) as srv:
            db = store_with(Path(d) / "s.sqlite", 4)
            t0 = time.monotonic()
            r = subprocess.run(run_args(db, srv.base_url, "--limit", "4", *shlex.split(flags)),
                               capture_output=True, text=True, env=ENV, timeout=1800)
            wall = time.monotonic() - t0
            reason = next((line for line in r.stderr.splitlines() if "stopped:" in line), "-")
            reason = reason.split("last errors: ")[-1].split(": ", 1)[-1][:70]
            print(f"{' '.join(map(str, mode)):<22} {r.returncode:>4} {wall:>7.1f} "
                  f"{len(srv.requests):>8}  {reason}")


def two_runs(texts: int, latency: float, concurrency: int) -> None:
    with tempfile.TemporaryDirectory() as d, StageStub(delay=latency) as stub:
        db = store_with(Path(d) / "s.sqlite", texts)
        args = run_args(db, stub.base_url, "--concurrency", str(concurrency))
        first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True, env=ENV)
        while len(stub.requests) < texts and first.poll() is None:
            time.sleep(0.01)
        in_flight = stub.inflight
        second = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, env=ENV)
        codes = [p.wait(timeout=3600) for p in (first, second)]
        counts = Counter(json.dumps(b, sort_keys=True, ensure_ascii=False)
                         for b in stub.requests)
    dup = sum(n - 1 for n in counts.values())
    print(f"two construct runs on one store, {texts} texts, latency {latency} s, "
          f"concurrency {concurrency} each: exit codes {codes}; requests {len(stub.requests)}, "
          f"distinct {len(counts)}, duplicates {dup}; calls in flight when the second started "
          f"{in_flight}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="probe", required=True)
    s = sub.add_parser("servers")
    s.add_argument("--flags", default="", help="construct run options, e.g. --max-failures 3")
    t = sub.add_parser("two-runs")
    t.add_argument("--texts", type=int, default=300)
    t.add_argument("--latency", type=float, default=0.05)
    t.add_argument("--concurrency", type=int, default=8)
    a = ap.parse_args()
    if a.probe == "servers":
        servers(a.flags)
    else:
        two_runs(a.texts, a.latency, a.concurrency)


if __name__ == "__main__":
    main()
