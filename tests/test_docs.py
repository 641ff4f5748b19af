"""The README and the docs pages: every relative link reaches a file (and its anchor), the README
stays a front door (at most 14 KB), and every page is in the index and the site's navigation.
`bash .ci/run` also builds the site with `mkdocs build --strict`; this test needs no mkdocs."""
import re
import unicodedata
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README_LIMIT = 14 * 1024
PAGES = sorted([ROOT / "README.md", *DOCS.glob("*.md")])

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)
CODE_SPAN = re.compile(r"(`+).+?\1", re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def prose(text: str) -> str:
    """The text without fenced code blocks and code spans (links there are not links)."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """The anchor Python-Markdown's toc (mkdocs) gives a heading; GitHub agrees for the headings
    these pages link to (ASCII words, no runs of spaces or hyphens)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").replace("*", "")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(path: Path) -> set[str]:
    return {slug(h) for h in HEADING.findall(FENCE.sub("", path.read_text("utf-8")))}


def links(path: Path) -> list[str]:
    return [t for t in LINK.findall(prose(path.read_text("utf-8")))
            if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def test_the_link_parser_sees_links_and_skips_code():
    text = "a [x](a.md#b) `[no](c.md)` ![img](d.png \"t\") [web](https://e.org)\n```\n[no](f.md)\n```\n"
    assert LINK.findall(prose(text)) == ["a.md#b", "d.png", "https://e.org"]
    assert slug("Training throughput (`bench/train_throughput.py`)") == \
        "training-throughput-benchtrain_throughputpy"
    assert slug("Set-up, demo and CI (fresh clone, 2 cores)") == "set-up-demo-and-ci-fresh-clone-2-cores"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_reach_a_file_and_anchor(page: Path):
    broken = []
    for target in links(page):
        file_part, _, anchor = target.partition("#")
        dest = (page.parent / file_part).resolve() if file_part else page
        if not dest.exists():
            broken.append(f"{target}: no file {dest}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading with anchor #{anchor} in {dest.name}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_docs_pages_link_only_inside_docs():
    """mkdocs cannot resolve a link out of docs/ (src/, bench/, the README): name such files in
    code spans instead."""
    outside = [f"{p.name}: {t}" for p in DOCS.glob("*.md") for t in links(p)
               if t.split("#")[0] and not (p.parent / t.split("#")[0]).resolve().is_relative_to(DOCS)]
    assert not outside


def test_readme_is_a_front_door():
    size = (ROOT / "README.md").stat().st_size
    assert size <= README_LIMIT, f"README.md is {size} bytes; move detail into docs/ (limit {README_LIMIT})"
    text = (ROOT / "README.md").read_text("utf-8")
    assert "bash scripts/setup.sh && .venv/bin/coig-writer construct demo" in text
    assert "bash .ci/run" in text
    assert "docs/README.md" in links(ROOT / "README.md")


def nav_files(node) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [f for v in node.values() for f in nav_files(v)]
    return [f for v in node for f in nav_files(v)]


def test_every_page_is_in_the_index_and_the_site_nav():
    pages = {p.name for p in DOCS.glob("*.md")}
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text("utf-8"))
    assert config["docs_dir"] == "docs"
    in_nav = nav_files(config["nav"])
    assert sorted(in_nav) == sorted(pages), "mkdocs.yml nav must list each docs page once"
    indexed = {t.split("#")[0] for t in links(DOCS / "README.md")}
    missing = sorted(pages - indexed - {"README.md"})
    assert not missing, f"not in docs/README.md: {missing}"
