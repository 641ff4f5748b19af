"""Rebuild the bundled sample corpus from the npm package `chinese-poetry` (MIT).

    npm pack chinese-poetry@2.0.1 && tar xzf chinese-poetry-2.0.1.tgz
    python scripts/build_sample.py package/dist src/coig_writer/data/sample/classical_zh.jsonl

Texts are classical (public domain); the collection is MIT-licensed. Each row keeps its source
as an npm package path and index.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PKG = "npm:chinese-poetry@2.0.1/dist"
LICENSE = "public domain text; chinese-poetry collection MIT"
PICKS = [  # (file, title or index, era)
    ("shuimotangshi/shuimotangshi.json", "游子吟", "唐"),
    ("shuimotangshi/shuimotangshi.json", "滁州西涧", "唐"),
    ("shuimotangshi/shuimotangshi.json", "夜上受降城闻笛", "唐"),
    ("shuimotangshi/shuimotangshi.json", "寻陆鸿渐不遇", "唐"),
    ("caocaoshiji/caocao.json", "观沧海", "东汉"),
    ("caocaoshiji/caocao.json", "龟虽寿", "东汉"),
    ("nalanxingde/纳兰性德诗集.json", "长相思·山一程", "清"),
    ("nalanxingde/纳兰性德诗集.json", "木兰花令·拟古决绝词", "清"),
    ("youmengying/youmengying.json", 0, "清"),
    ("youmengying/youmengying.json", 4, "清"),
]


def main(dist: Path, out: Path) -> None:
    rows = []
    for rel, key, era in PICKS:
        items = json.loads((dist / rel).read_text("utf-8"))
        idx = key if isinstance(key, int) else next(i for i, x in enumerate(items)
                                                    if x.get("title") == key)
        item = items[idx]
        lines = item.get("paragraphs") or item.get("para") or [item.get("content", "")]
        author = item.get("author") or ("曹操" if "caocao" in rel else "张潮")
        rows.append({
            "title": item.get("title") or f"幽梦影·{idx + 1}",
            "author": author,
            "text": "\n".join(lines),
            "source_url": f"{PKG}/{rel}#{idx}",
            "license": LICENSE,
            "era": era,
        })
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    print(f"wrote {len(rows)} texts to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
