"""Web ingest: pages per CPU-second and extraction quality, ours (the CLI) vs. datatrove.

Input: Debian's Chinese reference manual (debian-reference-zh-cn and -zh-tw: 32 real pages,
12-390 KB, navigation header and footer around DocBook content), repeated under distinct URLs
up to --pages pages, written
  - as a folder of .html files, and
  - as one WARC (gzip per record, written with warcio), the same pages as `response` records.
Then, each in its own child process (CPU = user + system of the process and its children):
  - ours, HTML: `coig-writer construct ingest FOLDER --db ...`;
  - ours, WARC: `coig-writer construct ingest crawl.warc.gz --db ...` (and with --fast-extract);
  - datatrove 0.10.1 on the same WARC: WarcReader -> Trafilatura(favour_precision=True,
    timeout=120 s: its 1 s default drops the longer chapters on this machine) -> JsonlWriter,
    LocalPipelineExecutor with 1 task.
Quality: shared-token F1 (Han characters and Latin words as tokens, multiset overlap) of each
system's text for each distinct page against a reference extraction: the page's DocBook
content (body without the navigation header/footer and the in-page table of contents),
checked by hand on several pages (see docs/benchmarks.md). Memory (--memory-gb): a WARC of
that size (the pages interleaved with 1 MiB incompressible image records, which ingest skips
unread) through `construct ingest`, RSS sampled every 0.2 s; deleted afterwards.

    pip install -e ".[bench]"; apt-get install debian-reference-zh-cn debian-reference-zh-tw
    python bench/web_ingest.py --pages 64 --rounds 2          # the recorded run
    python bench/web_ingest.py --pages 64 --memory-gb 1       # ... with the memory check
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEBIAN = Path("/usr/share/debian-reference")
CLI = [sys.executable, "-m", "coig_writer.cli"]
_TOKENS = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[A-Za-z0-9_]+")


def pages() -> list[Path]:
    found = sorted(DEBIAN.glob("*.zh-[ct][nw].html"))
    if not found:
        raise SystemExit("apt-get install debian-reference-zh-cn debian-reference-zh-tw first")
    return found


def url_of(page: Path, copy: int) -> str:
    return f"https://www.debian.org/doc/manuals/debian-reference/{copy}/{page.name}"


def build(work: Path, n: int, pad_bytes: int = 0) -> tuple[Path, Path]:
    """The HTML folder and the WARC of `n` pages (and `pad_bytes` of image records)."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    src = pages()
    folder, warcs = work / "html", work / "warc"
    folder.mkdir(parents=True, exist_ok=True)
    warcs.mkdir(exist_ok=True)
    warc = warcs / "crawl.warc.gz"
    pad_each = max(1, pad_bytes // (1 << 20) // max(n, 1)) if pad_bytes else 0
    with warc.open("wb") as f:
        writer = WARCWriter(f, gzip=True)
        for i in range(n):
            page, copy = src[i % len(src)], i // len(src)
            body = page.read_bytes()
            if not pad_bytes:
                (folder / f"{copy:03d}-{page.name}").write_bytes(body)
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=UTF-8")],
                                    protocol="HTTP/1.1")
            # the payload type header as Common Crawl writes it (datatrove's reader needs it, or
            # libmagic, which calls these XHTML pages text/xml and drops them)
            writer.write_record(writer.create_warc_record(
                url_of(page, copy), "response", payload=io.BytesIO(body), http_headers=http,
                warc_headers_dict={"WARC-Identified-Payload-Type": "text/html"}))
            for j in range(pad_each):
                img = StatusAndHeaders("200 OK", [("Content-Type", "image/jpeg")],
                                       protocol="HTTP/1.1")
                writer.write_record(writer.create_warc_record(
                    f"https://www.debian.org/img/{i}-{j}.jpg", "response",
                    payload=io.BytesIO(os.urandom(1 << 20)), http_headers=img,
                    warc_headers_dict={"WARC-Identified-Payload-Type": "image/jpeg"}))
    return folder, warc


def reference(page: Path) -> str:
    """The page's content as a person reads it: no navigation header/footer, no in-page TOC."""
    import lxml.html

    tree = lxml.html.fromstring(page.read_bytes())
    for el in tree.xpath('//div[@class="navheader" or @class="navfooter" or @class="toc"]'):
        el.drop_tree()
    return tree.body.text_content()


def f1(got: str, ref: str) -> float:
    a, b = Counter(_TOKENS.findall(got)), Counter(_TOKENS.findall(ref))
    common = sum((a & b).values())
    if not common:
        return 0.0
    p, r = common / sum(a.values()), common / sum(b.values())
    return 2 * p * r / (p + r)


# -- the systems (child processes) ---------------------------------------------------------
def child_datatrove(warcs: Path, out: Path) -> None:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.readers import WarcReader
    from datatrove.pipeline.writers import JsonlWriter

    LocalPipelineExecutor(pipeline=[
        WarcReader(str(warcs), glob_pattern="*.warc.gz"),
        Trafilatura(favour_precision=True, timeout=120),
        JsonlWriter(str(out), compression=None),
    ], tasks=1, workers=1, logging_dir=str(out / "logs")).run()


def measure(cmd: list[str], log: Path, sample_s: float = 0.2) -> dict[str, object]:
    """Run `cmd`: CPU seconds (with children), wall seconds, RSS samples (MiB, process tree)."""
    import psutil

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
        rss: list[float] = []
        done = threading.Event()

        def sample() -> None:
            try:
                root = psutil.Process(proc.pid)
                while not done.is_set():
                    total = 0
                    for p in [root, *root.children(recursive=True)]:
                        try:
                            total += p.memory_info().rss
                        except psutil.Error:
                            pass
                    rss.append(total / 2 ** 20)
                    time.sleep(sample_s)
            except psutil.Error:
                pass

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        rc = proc.wait()
        done.set()
        th.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if rc:
        print(log.read_text()[-3000:], file=sys.stderr)
        raise SystemExit(f"{cmd} failed with exit code {rc}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"cpu_s": cpu, "wall_s": time.perf_counter() - t0, "rss": rss}


def ours(inp: Path, db: Path, log: Path, *extra: str) -> dict[str, object]:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return measure([*CLI, "construct", "ingest", str(inp), "--db", str(db), *extra], log)


def our_texts(db: Path) -> dict[str, str]:
    """URL (WARC) or file name (HTML) -> stored text, for every stored record."""
    con = sqlite3.connect(db)
    out = {}
    for (data,) in con.execute("SELECT data FROM sources"):
        d = json.loads(data)
        key = d["provenance"].get("source_url") or Path(d["provenance"]["origin"]).name
        out[key.rsplit(":", 1)[0] if key.endswith(":1") else key] = d["text"]
    con.close()
    return out


def datatrove_texts(out: Path) -> dict[str, str]:
    texts = {}
    for f in out.glob("*.jsonl"):
        for line in f.read_text("utf-8").splitlines():
            d = json.loads(line)
            texts[d["metadata"]["url"]] = d["text"]
    return texts


def quality(texts: dict[str, str]) -> tuple[float, int]:
    """Mean F1 over the distinct pages (copy 0) and how many of them the system returned."""
    scores, found = [], 0
    for page in pages():
        got = texts.get(url_of(page, 0))
        found += got is not None
        scores.append(f1(got or "", reference(page)))
    return statistics.mean(scores), found


def memory_check(work: Path, gb: float) -> None:
    small = work / "mem-small"
    _, warc_small = build(small, 64, pad_bytes=0)
    big = work / "mem-big"
    _, warc_big = build(big, 64, pad_bytes=int(gb * 2 ** 30))
    size = warc_big.stat().st_size
    try:
        for label, warc in (("64 pages", warc_small), (f"{size / 2 ** 30:.2f} GiB", warc_big)):
            m = ours(warc, work / "mem.sqlite", work / "mem-log.txt")
            rss = m["rss"] or [0.0]
            q = [rss[int(len(rss) * k / 4)] for k in (1, 2, 3)]
            print(f"memory, ours, WARC {label}: RSS at 1/4, 1/2, 3/4 of the run "
                  f"{q[0]:.0f} / {q[1]:.0f} / {q[2]:.0f} MiB, peak {max(rss):.0f} MiB "
                  f"({m['cpu_s']:.1f} CPU s, {m['wall_s']:.1f} s wall)", flush=True)
    finally:
        shutil.rmtree(big, ignore_errors=True)
        shutil.rmtree(small, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pages", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=1, help="alternated rounds (medians reported)")
    ap.add_argument("--memory-gb", type=float, default=0.0)
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child_datatrove(Path(args.child[1]), Path(args.child[2]))
    work = Path(tempfile.mkdtemp(prefix="web-bench-"))
    try:
        folder, warc = build(work, args.pages)
        print(f"{args.pages} pages, {sum(p.stat().st_size for p in folder.iterdir()) / 2**20:.1f} "
              f"MiB of HTML; WARC {warc.stat().st_size / 2 ** 20:.1f} MiB", flush=True)
        runs: dict[str, list[float]] = {"html": [], "warc": [], "warc-fast": [], "datatrove": []}
        for r in range(args.rounds):
            m = ours(folder, work / "html.sqlite", work / "html-log.txt")
            runs["html"].append(float(m["cpu_s"]))
            m = ours(warc, work / "warc.sqlite", work / "warc-log.txt")
            runs["warc"].append(float(m["cpu_s"]))
            m = ours(warc, work / "fast.sqlite", work / "fast-log.txt", "--fast-extract")
            runs["warc-fast"].append(float(m["cpu_s"]))
            out = work / f"dt-{r}"
            m = measure([sys.executable, __file__, "--child", "datatrove", str(warc.parent),
                         str(out)], work / "dt-log.txt")
            runs["datatrove"].append(float(m["cpu_s"]))
            print(f"round {r + 1}: CPU s " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in runs.items()),
                  flush=True)
        rate = {k: args.pages / statistics.median(v) for k, v in runs.items()}
        for k, v in rate.items():
            print(f"{k:>10}: {v:.2f} pages per CPU-second")
        print(f"ours / datatrove, WARC: {rate['warc'] / rate['datatrove']:.2f}x "
              f"(--fast-extract {rate['warc-fast'] / rate['datatrove']:.2f}x); "
              f"HTML files / datatrove WARC: {rate['html'] / rate['datatrove']:.2f}x")
        q_ours, n_ours = quality(our_texts(work / "warc.sqlite"))
        q_fast, _ = quality(our_texts(work / "fast.sqlite"))
        q_dt, n_dt = quality(datatrove_texts(work / f"dt-{args.rounds - 1}"))
        print(f"shared-token F1 vs reference, {len(pages())} distinct pages: ours {q_ours:.3f} "
              f"({n_ours} returned; --fast-extract {q_fast:.3f}), datatrove {q_dt:.3f} "
              f"({n_dt} returned)")
        if args.memory_gb:
            memory_check(work, args.memory_gb)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
