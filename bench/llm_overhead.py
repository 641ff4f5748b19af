"""Client-side cost of an LLM job against a fixed-latency stub server in its own process.

For each setting (concurrency C, stub latency L) it runs, on fresh stores of N texts with no
refinement (5 calls per text):
  1. `construct run` logic with the local executor (one asyncio loop in this process),
  2. `coig-writer construct run` itself in a child process (the CLI path: start-up, progress
     bar, accounting and summary included; CPU from the child's rusage),
  3. the same with the Ray executor (2 workers on a local Ray instance),
  4. a lean aiohttp client replaying exactly the requests of run 1 at the same concurrency,
and prints calls/s, the ratio to the latency-bound ideal C / L, client CPU per call (this
process's CPU time / calls; for Ray the workers' CPU is not in it) and peak RSS. The CLI's
start-up alone (`coig-writer --help`) is printed once, to tell fixed from per-call cost.

    .venv/bin/python bench/llm_overhead.py --items 400 --settings 64:0.2 256:1.0
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx

from coig_writer.construct.config import ConstructConfig
from coig_writer.construct.pipeline import ConstructPipeline
from coig_writer.construct.runner import run_local, run_on_ray
from coig_writer.executors.spec import ExecutorSpec
from coig_writer.llm import BackendSpec
from coig_writer.llm.openai_compat import OpenAICompatBackend
from coig_writer.records import SourceText
from coig_writer.store import Store

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_stub(latency: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(HERE / "stub_server.py"), "--port", str(port),
                             "--latency", str(latency)])
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(100):
        try:
            httpx.get(f"{url}/models", timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("stub server did not start")


def fill(store: Store, n: int) -> None:
    base = "床前明月光，疑是地上霜。举头望明月，低头思故乡。" * 8
    with store.transaction():
        for i in range(n):
            src = SourceText(id=f"s{i:07d}", text=f"{base}{i}")
            store.db.execute("INSERT INTO sources(id, hash, status, data) VALUES (?,?,?,?)",
                             (src.id, src.hash, src.status, src.model_dump_json()))


def cfg() -> ConstructConfig:
    return ConstructConfig(max_rounds=0)


def measure(fn) -> tuple[float, float, object]:
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def local_run(url: str, n: int, conc: int, work: Path) -> tuple[float, float, int, list[dict]]:
    with Store(work / f"local-{conc}.sqlite") as s:
        fill(s, n)

        async def go():
            be = OpenAICompatBackend(url, "stub", concurrency=conc)
            try:
                return await run_local(ConstructPipeline(s, be, cfg()), concurrency=conc)
            finally:
                await be.aclose()

        wall, cpu, summary = measure(lambda: asyncio.run(go()))
        assert summary.statuses.get("accepted") == n, summary.statuses
        bodies = [json.loads(r[0]) for r in s.db.execute("SELECT request FROM llm_cache")]
        return wall, cpu, summary.llm_calls, bodies


def cli_run(url: str, n: int, conc: int, work: Path) -> tuple[float, float, int]:
    """`coig-writer construct run` in a child process on a fresh store of n texts."""
    db = work / f"cli-{conc}.sqlite"
    with Store(db) as s:
        fill(s, n)
    cfg_file = work / "cli.yaml"
    cfg_file.write_text("max_rounds: 0\n", "utf-8")
    cmd = [sys.executable, "-m", "coig_writer.cli", "construct", "run", "--db", str(db),
           "--backend", "openai", "--base-url", url, "--model", "stub", "--concurrency",
           str(conc), "--config", str(cfg_file), "--json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    summary = json.loads(out.stdout)
    assert summary["statuses"].get("accepted") == n, summary["statuses"]
    return wall, cpu, summary["llm_calls"]


def startup_cpu() -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "coig_writer.cli", "--help"], capture_output=True,
                   check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def ray_run(url: str, n: int, conc: int, work: Path, workers: int) -> tuple[float, int]:
    with Store(work / f"ray-{conc}.sqlite") as s:
        fill(s, n)
        spec = BackendSpec(kind="openai", model="stub", base_url=[url],
                           concurrency=max(1, conc // workers))
        pipe = ConstructPipeline(s, OpenAICompatBackend(url, "stub"), cfg())
        wall, _, summary = measure(lambda: run_on_ray(
            pipe, spec, ExecutorSpec(kind="ray", workers=workers,
                                     shard_size=max(8, n // (workers * 4)),
                                     concurrency=max(1, conc // workers))))
        assert summary.statuses.get("accepted") == n, summary.statuses
        return wall, summary.llm_calls


def lean_run(url: str, bodies: list[dict], conc: int) -> tuple[float, float]:
    async def go():
        sem = asyncio.Semaphore(conc)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            async def one(req: dict) -> None:
                body = {"model": "stub", "messages": req["messages"],
                        "max_tokens": req["max_tokens"], "temperature": req["temperature"]}
                if req.get("json_schema"):
                    body["response_format"] = {"type": "json_schema", "json_schema": {
                        "name": "a", "schema": json.loads(req["json_schema"])}}
                async with sem, http.post(f"{url}/chat/completions", json=body) as r:
                    json.loads(await r.read())

            await asyncio.gather(*(one(b) for b in bodies))

    wall, cpu, _ = measure(lambda: asyncio.run(go()))
    return wall, cpu


def pending_memory(n: int, work: Path) -> None:
    """Stream the pending items of an n-text store as a run does; print time and RSS growth."""
    def rss() -> float:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    with Store(work / "pending.sqlite") as s:
        fill(s, n)
        pipe = ConstructPipeline(s, OpenAICompatBackend("http://127.0.0.1:9/v1", "stub"), cfg())
        before, t0 = rss(), time.perf_counter()
        count = pipe.count_pending()
        seen = sum(1 for _ in pipe.pending())
        print(f"pending stream: {seen:,} of {count:,} texts in {time.perf_counter() - t0:.1f}s, "
              f"RSS {before:.0f} -> {rss():.0f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--items", type=int, default=400)
    ap.add_argument("--settings", nargs="*", default=["64:0.2", "256:1.0"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--pending-scale", type=int, default=0,
                    help="also stream the pending items of a store of this many texts")
    args = ap.parse_args()
    if args.pending_scale:
        with tempfile.TemporaryDirectory() as tmp:
            pending_memory(args.pending_scale, Path(tmp))
    import ray

    if not args.no_ray:
        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False,
                 _node_ip_address="127.0.0.1")
    print(f"{'conc':>5} {'lat s':>6} {'client':<10} {'calls':>6} {'calls/s':>8} {'ideal':>6} "
          f"{'ratio':>6} {'CPU ms/call':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for setting in args.settings:
            conc, lat = int(setting.split(":")[0]), float(setting.split(":")[1])
            stub, url = start_stub(lat)
            try:
                ideal = conc / lat
                wall, cpu, calls, bodies = local_run(url, args.items, conc, work)
                rows = [("local", calls, wall, cpu)]
                cw, cc, ccalls = cli_run(url, args.items, conc, work)
                rows.append(("cli", ccalls, cw, cc))
                lw, lc = lean_run(url, bodies, conc)
                rows.append(("lean", len(bodies), lw, lc))
                if not args.no_ray:
                    rw, rcalls = ray_run(url, args.items, conc, work, args.workers)
                    rows.append((f"ray x{args.workers}", rcalls, rw, float("nan")))
                for name, n, w, c in rows:
                    print(f"{conc:>5} {lat:>6.2f} {name:<10} {n:>6} {n / w:>8.1f} {ideal:>6.0f} "
                          f"{n / w / ideal:>6.2f} {1000 * c / n:>12.2f}", flush=True)
            finally:
                stub.terminate()
                stub.wait()
    print(f"CLI start-up alone (coig-writer --help): {1000 * startup_cpu():.0f} ms CPU")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {rss:.0f} MiB (pid {os.getpid()})")


if __name__ == "__main__":
    main()
