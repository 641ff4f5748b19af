"""What the cheap pre-filters save and what they cost: LLM screen calls avoided per 1,000 pages,
against the share of removed texts the LLM screen would have kept.

The pages (real text written by others, as HTML with a site's navigation around it):
  - Debian reference manual (debian-reference-zh-cn, -zh-tw): every top-level section of every
    chapter as its own page, plus the index pages (tables of contents);
  - fortunes-zh: the 唐诗三百首 and 宋词 poems and a seeded sample of the `chinese` collection
    (quotations, jokes, essays, notices), each entry as a page.
Ingest runs through the CLI (`construct ingest PAGES --prefilter`). Then a seeded sample of
the texts the pre-filters removed, and one of the texts they kept, go through the real
`screen` stage (the construct pipeline's first LLM call) with the embedded model; a text is
kept by the screen when min(quality, creativity) >= the screen threshold (8, as the paper).

    apt-get install debian-reference-zh-cn debian-reference-zh-tw fortunes-zh
    python bench/web_prefilter.py --sample 10            # the recorded run (0.5B model)
    python bench/web_prefilter.py --sample 0             # pre-filter counts only
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import math
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
DEBIAN = Path("/usr/share/debian-reference")
FORTUNES = Path("/usr/share/games/fortunes")
PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title></head><body>
<div class="nav"><a href="/">首页</a> | <a href="/list">文章列表</a> | <a href="/about">关于本站</a></div>
<article><h1>{title}</h1>
{body}
</article><footer>本站内容来自 {source}</footer></body></html>"""


def debian_pages(out: Path) -> int:
    import lxml.html

    n = 0
    for path in sorted(DEBIAN.glob("*.zh-[ct][nw].html")):
        raw = path.read_bytes()
        tree = lxml.html.fromstring(raw)
        sections = tree.xpath('//div[@class="chapter" or @class="appendix" or @class="preface"]'
                              '/div[@class="section"]')
        if not sections:  # the index pages: a table of contents
            (out / f"debian-{path.stem}.html").write_bytes(raw)
            n += 1
            continue
        for i, sec in enumerate(sections):
            head = sec.xpath(".//h2")
            title = head[0].text_content().strip() if head else path.stem
            body = lxml.html.tostring(sec, encoding="unicode")
            page = PAGE.format(title=html.escape(title), body=body, source="Debian 参考手册")
            (out / f"debian-{path.stem}-{i:02d}.html").write_text(page, "utf-8")
            n += 1
    return n


def fortune_pages(out: Path, chinese: int, seed: int) -> int:
    n = 0
    rng = random.Random(seed)
    for name in ("tang300", "song100", "chinese"):
        text = re.sub(r"\x1b\[[0-9;]*m", "", (FORTUNES / name).read_text("utf-8", "replace"))
        entries = [e.strip() for e in text.split("\n%\n") if e.strip()]
        if name == "chinese":
            entries = rng.sample(entries, min(chinese, len(entries)))
        for i, e in enumerate(entries):
            lines = e.split("\n")
            if len(lines) == 1:  # a one-line saying: a generic title (not the saying twice)
                lines = [f"{name} {i}", *lines]
            body = "\n".join(f"<p>{html.escape(ln)}</p>" if ln.strip() else "" for ln in lines[1:])
            page = PAGE.format(title=html.escape(lines[0][:60]), body=body, source="fortunes-zh")
            (out / f"fortune-{name}-{i:04d}.html").write_text(page, "utf-8")
            n += 1
    return n


def wilson(k: int, n: int) -> tuple[float, float]:
    if not n:
        return 0.0, 0.0
    z, p = 1.96, k / n
    mid = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, mid - half), min(1.0, mid + half)


def screen(db: Path, ids: list[str], model: str, article_chars: int
           ) -> list[tuple[str, int, int] | None]:
    """The screen stage's (genre, quality, creativity) for each text; None when it failed."""
    from coig_writer.construct.config import ConstructConfig
    from coig_writer.construct.pipeline import ConstructPipeline
    from coig_writer.llm.engine import LocalBackend
    from coig_writer.llm.models import ensure_model
    from coig_writer.store import Store

    out: list[tuple[str, int, int] | None] = []

    async def go(store: Store, pipe: ConstructPipeline) -> None:
        try:
            for sid in ids:
                src = store.corpus.get_source(sid)
                article = src.text[:pipe.config.max_article_chars]  # as the pipeline cuts
                res = await pipe.run_stage("screen", sid, 0, "prefilter-bench", article=article,
                                           title=src.provenance.title or "",
                                           genres=pipe.genre_listing)
                o = res.output
                out.append((str(o.get("genre")), int(o["quality"]), int(o["creativity"]))
                           if res.ok else None)
                print(f"  {sid} {src.filter_reason or 'kept'}: {out[-1]}", flush=True)
        finally:
            await pipe.llm.aclose()

    with Store(db) as store:  # one event loop for every call (the client belongs to it)
        backend = LocalBackend(ensure_model(model), name=model, n_ctx=8192)
        cfg = ConstructConfig(max_article_chars=article_chars)
        asyncio.run(go(store, ConstructPipeline(store, backend, cfg)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sample", type=int, default=10, help="texts screened per group")
    ap.add_argument("--chinese", type=int, default=400, help="entries of fortunes-zh `chinese`")
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--article-chars", type=int, default=1500,
                    help="texts cut to this in the screen prompt (the pipeline's default: 6000)")
    ap.add_argument("--seed", type=int, default=20261203)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="prefilter-bench-"))
    folder = work / "pages"
    folder.mkdir()
    n = debian_pages(folder) + fortune_pages(folder, args.chinese, args.seed)
    db = work / "store.sqlite"
    subprocess.run([sys.executable, "-m", "coig_writer.cli", "construct", "ingest", str(folder),
                    "--db", str(db), "--prefilter", "--lang", "zh"], check=True,
                   env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
                   stdout=subprocess.DEVNULL)
    con = sqlite3.connect(db)
    rows = [(i, st, json.loads(d).get("filter_reason") or "") for i, st, d in
            con.execute("SELECT id, status, data FROM sources ORDER BY rowid")]
    con.close()
    from coig_writer.construct.filters import reason_key
    from coig_writer.construct.web.quality import PrefilterConfig

    names = set(PrefilterConfig().names)
    by = Counter(reason_key(r) for _, st, r in rows if st == "filtered")
    removed = [i for i, st, r in rows if st == "filtered" and r.split(":")[0] in names]
    kept = [i for i, st, _ in rows if st == "ok"]
    print(f"{n} pages; ok {len(kept)}; filtered {dict(by)}")
    print(f"pre-filters removed {len(removed)} texts that would reach the screen: "
          f"{1000 * len(removed) / n:.0f} screen calls avoided per 1,000 pages")
    if not args.sample:
        return
    rng = random.Random(args.seed)
    groups = {"removed": rng.sample(removed, min(args.sample, len(removed))),
              "kept": rng.sample(kept, min(args.sample, len(kept)))}
    threshold = 8
    for label, ids in groups.items():
        print(f"screening {len(ids)} {label} texts with {args.model}:", flush=True)
        res = screen(db, ids, args.model, args.article_chars)
        done = [r for r in res if r is not None]
        k = sum(min(q, c) >= threshold for _, q, c in done)
        lo, hi = wilson(k, len(done))
        mean_q = sum(q for _, q, _ in done) / max(len(done), 1)
        print(f"{label}: the screen keeps {k} of {len(done)} answered ({k / max(len(done), 1):.0%}, "
              f"95% CI {lo:.0%}-{hi:.0%}); mean quality {mean_q:.1f}; "
              f"{len(res) - len(done)} failed", flush=True)


if __name__ == "__main__":
    main()
