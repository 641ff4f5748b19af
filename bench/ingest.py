"""Ingest at corpus scale: our ingest vs. datatrove's MinHash dedup on the same corpus.

Builds a seeded synthetic corpus of N Chinese texts (Zipf-distributed words over common
characters, Chinese punctuation, 200-1,200 characters) in which P texts are planted near
duplicates of earlier ones (1-5% of characters replaced, a sentence appended). Then, each in
its own process:
  - ours: `coig_writer.construct.ingest.ingest` into a fresh store (parse, filters, exact and
    near-duplicate detection, SQLite writes, everything an ingest does);
  - datatrove 0.10.1: the four MinHash stages (signatures, buckets, clusters, filter) with
    character 5-grams (a small custom WordTokenizer), 14 buckets x 8 hashes,
    LocalPipelineExecutor with 2 tasks / 2 workers.
Prints docs per CPU-second (user+system of the process and its children), the ratio
ours/datatrove, recall on the planted pairs (all, and those at exact 5-gram Jaccard >= 0.8),
texts removed that were not planted, and peak RSS (summed over the process tree, sampled).

    pip install -e ".[bench]"
    nice python bench/ingest.py --n 100000 --planted 2000     # the recorded run
    python bench/ingest.py --n 5000 --planted 100             # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

PUNCT = "，。！？；：、"
# "fork": pool workers are children of the measured process, so their CPU time is counted
# (with the default "forkserver" they are not); it also spares datatrove a re-import per worker.
START = "fork"


# -- corpus ------------------------------------------------------------------------------------
def make_corpus(folder: Path, n: int, planted: int, seed: int, files: int = 4) -> list[tuple]:
    """Write `files` JSONL files with `n` texts; returns the planted (original, copy) ids."""
    rng = np.random.default_rng(seed)
    chars = np.array([chr(c) for c in range(0x4E00, 0x4E00 + 3500)], dtype=object)
    lengths = rng.choice([1, 2, 2, 2, 3, 4], size=20_000)
    vocab = np.array(["".join(rng.choice(chars, size=k)) for k in lengths], dtype=object)
    zipf = 1.0 / np.arange(1, len(vocab) + 1) ** 1.05
    zipf /= zipf.sum()

    vlen = np.array([len(w) for w in vocab])
    punct = np.array(list(PUNCT), dtype=object)

    def text(n_chars: int) -> str:
        idx = rng.choice(len(vocab), size=n_chars // 2 + 8, p=zipf)
        k = int(np.searchsorted(np.cumsum(vlen[idx]), n_chars)) + 1
        marks = np.where(rng.random(k) < 0.12, punct[rng.integers(len(punct), size=k)], "")
        return "".join(vocab[idx[:k]] + marks) + "。"

    base = n - planted
    docs = [text(int(rng.integers(200, 1200))) for _ in range(base)]
    originals = rng.choice(base, size=planted, replace=False)
    pairs = []
    for k, o in enumerate(originals):
        src = list(docs[o])
        for i in rng.choice(len(src), size=max(1, int(len(src) * rng.uniform(0.01, 0.05))),
                            replace=False):
            src[i] = chars[rng.integers(len(chars))]
        pairs.append((int(o), f"dup{k}", "".join(src) + text(int(rng.integers(15, 40)))))
    # each copy goes somewhere after its original
    order: list[tuple[str, str]] = [(f"d{i}", t) for i, t in enumerate(docs)]
    inserts = sorted(((int(rng.integers(o + 1, base + 1)), did, t) for o, did, t in pairs),
                     key=lambda x: x[0], reverse=True)
    for pos, did, t in inserts:
        order.insert(pos, (did, t))
    folder.mkdir(parents=True, exist_ok=True)
    per = -(-len(order) // files)
    for f in range(files):
        with (folder / f"part{f:02d}.jsonl").open("w", encoding="utf-8") as out:
            for did, t in order[f * per:(f + 1) * per]:
                out.write(json.dumps({"id": did, "text": t}, ensure_ascii=False) + "\n")
    return [(f"d{o}", did) for o, did, _ in pairs]


def pair_jaccards(folder: Path, pairs: list[tuple[str, str]]) -> dict[str, float]:
    from coig_writer.construct.filters import char_shingles, jaccard

    need = {i for p in pairs for i in p}
    texts = {}
    for f in sorted(folder.glob("*.jsonl")):
        for line in f.open(encoding="utf-8"):
            row = json.loads(line)
            if row["id"] in need:
                texts[row["id"]] = row["text"]
    return {d: jaccard(char_shingles(texts[o], 5), char_shingles(texts[d], 5)) for o, d in pairs}


# -- the two systems (each run in a child process) ---------------------------------------------
def run_ours(corpus: Path, work: Path, threshold: float) -> None:
    from coig_writer.construct.ingest import IngestOptions, ingest
    from coig_writer.store import Store

    with Store(work / "ours.sqlite") as store:
        rep = ingest(sorted(corpus.glob("*.jsonl")), store,
                     IngestOptions(near_dup_threshold=threshold))
        removed = [s.id for s in store.corpus.iter_sources("filtered")
                   if (s.filter_reason or "").split(" ")[0] in ("near_duplicate", "exact_duplicate")]
    (work / "removed.json").write_text(json.dumps(removed))
    (work / "summary.txt").write_text(
        f"ours: read {rep.read}, hashed {rep.hashed}, filtered {dict(rep.filtered)}, "
        f"LSH {rep.layout} (bands x rows), {rep.batches} transactions")


def _xxh64_utf8(text: str) -> int:
    import xxhash

    return xxhash.xxh64_intdigest(text.encode("utf-8"))


def run_datatrove(corpus: Path, work: Path) -> None:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.word_tokenizers import WordTokenizer

    class CharTokenizer(WordTokenizer):
        """Every non-space character is a word: 5-grams of words = character 5-grams."""

        def word_tokenize(self, text: str) -> list[str]:
            return [c for c in text if not c.isspace()]

        def sent_tokenize(self, text: str) -> list[str]:
            return [text]

        def span_tokenize(self, text: str) -> list[tuple[int, int]]:
            return [(0, len(text))]

    cfg = MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8)
    sig = MinhashDedupSignature(output_folder=str(work / "sigs"), config=cfg,
                                language=CharTokenizer())
    # datatrove 0.10.1 passes str to xxhash, which xxhash >= 4 refuses; encode as xxhash 3 did
    sig._hash_func = _xxh64_utf8
    logs = work / "logs"
    stages = [
        LocalPipelineExecutor(pipeline=[JsonlReader(str(corpus)), sig], tasks=2, workers=2,
                              logging_dir=str(logs / "1"), start_method=START),
        LocalPipelineExecutor(pipeline=[MinhashDedupBuckets(
            input_folder=str(work / "sigs"), output_folder=str(work / "buckets"), config=cfg)],
            tasks=cfg.num_buckets, workers=2, logging_dir=str(logs / "2"), start_method=START),
        LocalPipelineExecutor(pipeline=[MinhashDedupCluster(
            input_folder=str(work / "buckets"), output_folder=str(work / "remove"), config=cfg)],
            tasks=1, logging_dir=str(logs / "3"), start_method=START),
        LocalPipelineExecutor(pipeline=[
            JsonlReader(str(corpus)),
            MinhashDedupFilter(input_folder=str(work / "remove"),
                               exclusion_writer=JsonlWriter(str(work / "removed"))),
            JsonlWriter(str(work / "kept"))], tasks=2, workers=2, logging_dir=str(logs / "4"),
            start_method=START),
    ]
    for stage in stages:
        stage.run()
    import gzip

    removed = [json.loads(line)["id"] for f in sorted((work / "removed").glob("*"))
               for line in gzip.open(f, "rt", encoding="utf-8")]
    (work / "removed.json").write_text(json.dumps(removed))


# -- measuring ----------------------------------------------------------------------------------
def measure(system: str, corpus: Path, work: Path, threshold: float) -> dict[str, float]:
    """Run one system in a child process: CPU seconds (with its children), wall, peak RSS."""
    import psutil

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    log = (work / "log.txt").open("w")
    proc = subprocess.Popen([sys.executable, __file__, "--child", system, str(corpus), str(work),
                             str(threshold)],
                            stdout=log, stderr=subprocess.STDOUT)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        try:
            root = psutil.Process(proc.pid)
            while not done.is_set():
                procs = [root, *root.children(recursive=True)]
                total = 0
                for p in procs:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
                peak = max(peak, total)
                time.sleep(0.1)
        except psutil.Error:
            pass

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    rc = proc.wait()
    done.set()
    th.join()
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    log.close()
    if rc:
        print((work / "log.txt").read_text()[-3000:], file=sys.stderr)
        raise SystemExit(f"{system} failed with exit code {rc}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"cpu_s": cpu, "wall_s": wall, "rss_mb": peak / 2 ** 20}


def score(removed: list[str], pairs: list[tuple[str, str]], jac: dict[str, float]
          ) -> dict[str, float]:
    gone = set(removed)
    caught = {d for o, d in pairs if d in gone or o in gone}
    planted = {i for p in pairs for i in p}
    both = sum(1 for o, d in pairs if o in gone and d in gone)
    high = [d for _, d in pairs if jac[d] >= 0.8]
    return {"recall": len(caught) / len(pairs),
            "recall_08": sum(d in caught for d in high) / max(1, len(high)),
            "false_removals": len(gone - planted) + both, "removed": len(gone)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="texts in the corpus")
    ap.add_argument("--planted", type=int, default=None, help="near duplicates (default n/50)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", choices=["ours", "datatrove"], default=None)
    ap.add_argument("--thresholds", default="0.8,0.6",
                    help="our near-duplicate thresholds to run (comma separated)")
    ap.add_argument("--keep", type=Path, default=None, help="work folder to keep")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        system, corpus, work, threshold = args.child
        if system == "ours":
            run_ours(Path(corpus), Path(work), float(threshold))
        else:
            run_datatrove(Path(corpus), Path(work))
        return
    planted = args.planted if args.planted is not None else args.n // 50
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        t0 = time.perf_counter()
        pairs = make_corpus(work / "corpus", args.n, planted, args.seed)
        jac = pair_jaccards(work / "corpus", pairs)
        js = sorted(jac.values())
        print(f"corpus: {args.n} texts, {planted} planted near duplicates (5-gram Jaccard "
              f"{js[0]:.2f}-{js[-1]:.2f}, median {js[len(js) // 2]:.2f}; "
              f"{sum(j >= 0.8 for j in js)} at >= 0.8), built in {time.perf_counter() - t0:.0f}s")
        results = {}
        runs = [("ours", float(t)) for t in args.thresholds.split(",")] + [("datatrove", 0.0)]
        for system, threshold in runs:
            if args.only and system != args.only:
                continue
            name = f"ours@{threshold}" if system == "ours" else system
            folder = work / name
            folder.mkdir(exist_ok=True)
            m = measure(system, work / "corpus", folder, threshold)
            removed = json.loads((folder / "removed.json").read_text())
            summary = folder / "summary.txt"
            if summary.exists():
                print(f"  {summary.read_text().strip()}")
            m |= score(removed, pairs, jac)
            m["docs_per_cpu_s"] = args.n / m["cpu_s"]
            results[name] = m
            print(f"{name:9s}: {m['docs_per_cpu_s']:7.0f} docs per CPU-second "
                  f"(cpu {m['cpu_s']:.1f}s, wall {m['wall_s']:.1f}s), recall {m['recall']:.1%} "
                  f"all / {m['recall_08']:.1%} at Jaccard >= 0.8, false removals "
                  f"{m['false_removals']}, peak RSS {m['rss_mb']:.0f} MB", flush=True)
        for name, m in results.items():
            if name != "datatrove" and "datatrove" in results:
                r = m["docs_per_cpu_s"] / results["datatrove"]["docs_per_cpu_s"]
                print(f"ratio {name}/datatrove (docs per CPU-second): {r:.2f}")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
