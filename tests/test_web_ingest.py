"""Web ingest: HTML pages and WARC files through `construct ingest` (real pages, real libraries).

The real pages are Debian's Chinese documentation (debian-reference-zh-cn, simplified, and
debian-reference-zh-tw, traditional), which `.ci/run` installs: navigation header and footer
tables around DocBook content. Without the packages the tests that need them skip here, and
fail in CI (CI=true), where they must run.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import lxml.html
import pytest
from typer.testing import CliRunner

from coig_writer.cli import app
from coig_writer.construct.filters import char_shingles, jaccard
from coig_writer.construct.ingest import IngestOptions, ingest
from coig_writer.construct.web.extract import ExtractOptions
from coig_writer.construct.web.quality import PrefilterConfig, failures
from coig_writer.construct.web.script import to_simplified
from coig_writer.construct.web.signals import parse_count
from coig_writer.construct.web.sites import load_sites
from coig_writer.construct.where import parse_conditions
from coig_writer.store import Store

DATA = Path(__file__).parent / "data" / "web"
DEBIAN = Path("/usr/share/debian-reference")
PAGES = ("apa", "pr01", "ch03")  # small chapters: appendix, preface, system initialisation
runner = CliRunner()


def debian_page(name: str, lang: str = "zh-cn") -> Path:
    path = DEBIAN / f"{name}.{lang}.html"
    if not path.exists():
        why = f"{path} is missing: apt-get install debian-reference-zh-cn debian-reference-zh-tw"
        if os.environ.get("CI") == "true":
            pytest.fail(why + " (.ci/run installs it)")
        pytest.skip(why)
    return path


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def sources(db: Path) -> dict[str, object]:
    with Store(db) as st:
        return {s.provenance.origin: s for s in st.corpus.iter_sources(None)}


def quarantine(db: Path) -> dict[str, str]:
    with Store(db) as st:
        return {q.where: q.error for q in st.corpus.iter_quarantine()}


def nav_lines(path: Path) -> set[str]:
    """The navigation header's and footer's texts that the page's content does not contain."""
    tree = lxml.html.fromstring(path.read_bytes())
    boxes = tree.xpath('//div[@class="navheader" or @class="navfooter"]')
    nav = {t.strip() for box in boxes for t in box.itertext() if len(t.strip()) >= 2}
    for box in boxes:
        box.drop_tree()
    content = tree.text_content()
    return {t for t in nav if t not in content}


def test_debian_pages_lose_navigation_and_keep_title(tmp_path):
    folder = tmp_path / "saved"
    folder.mkdir()
    pages = [debian_page(n) for n in PAGES]
    for p in pages:
        (folder / p.name).write_bytes(p.read_bytes())
    db = tmp_path / "s.sqlite"
    run("construct", "ingest", str(folder), "--db", str(db))
    stored = sources(db)
    assert len(stored) == len(pages)
    for p in pages:
        src = stored[f"{folder / p.name}:1"]
        assert src.status == "ok"
        nav = nav_lines(p)
        assert nav and not [line for line in nav if line in src.text], p.name
        title = " ".join(lxml.html.fromstring(p.read_bytes()).findtext(".//title").split())
        assert src.provenance.title == title
        assert src.meta["lang"] == "zh" and src.meta["charset"] == "utf-8"
        assert len(src.text) > 2000 and "\n" in src.text  # paragraphs are lines


def test_traditional_copy_is_a_near_duplicate_under_to_simplified(tmp_path):
    page = debian_page("pr01")
    folder = tmp_path / "pages"
    folder.mkdir()
    (folder / "a.html").write_bytes(page.read_bytes())
    import opencc

    trad = opencc.OpenCC("s2t").convert(page.read_text("utf-8"))
    (folder / "b.html").write_text(trad, "utf-8")
    db = tmp_path / "s.sqlite"
    run("construct", "ingest", str(folder), "--db", str(db), "--to-simplified")
    stored = sources(db)
    a, b = stored[f"{folder}/a.html:1"], stored[f"{folder}/b.html:1"]
    assert a.status == "ok" and b.status == "filtered"
    assert b.filter_reason.split(" ")[0] in ("near_duplicate", "exact_duplicate")
    assert b.duplicate_of == a.id
    assert b.meta["original_text"] != b.text and to_simplified(b.meta["original_text"]) == b.text
    # without conversion the two scripts share few character 5-grams: not caught
    assert jaccard(char_shingles(a.text, 5), char_shingles(b.meta["original_text"], 5)) < 0.5
    db2 = tmp_path / "s2.sqlite"
    run("construct", "ingest", str(folder), "--db", str(db2))
    assert {s.status for s in sources(db2).values()} == {"ok"}


def test_real_traditional_page_is_converted(tmp_path):
    page = debian_page("apa", "zh-tw")
    db = tmp_path / "s.sqlite"
    run("construct", "ingest", str(page), "--db", str(db), "--to-simplified", "--lang", "zh")
    (src,) = sources(db).values()
    assert src.status == "ok" and src.meta["lang"] == "zh"
    assert "附录" in src.provenance.title and src.meta["original_title"].startswith("附錄")
    assert "系統" in src.meta["original_text"] and "系統" not in src.text and "系统" in src.text


def _warc(path: Path) -> dict[str, int]:
    """A WARC (gzip per record) of real pages plus bad records; returns name -> offset."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=True)
    offsets: dict[str, int] = {}

    def add(name: str, url: str, body: bytes, ctype: str, kind: str = "response") -> None:
        offsets[name] = buf.tell()
        http = StatusAndHeaders("200 OK", [("Content-Type", ctype)], protocol="HTTP/1.1")
        writer.write_record(writer.create_warc_record(url, kind, payload=io.BytesIO(body),
                                                      http_headers=http))

    offsets["warcinfo"] = buf.tell()
    writer.write_record(writer.create_warcinfo_record("test.warc.gz", {"software": "warcio"}))
    for n in PAGES:
        add(n, f"https://www.debian.org/doc/manuals/debian-reference/{n}.zh-cn.html",
            debian_page(n).read_bytes(), "text/html; charset=UTF-8")
    add("image", "https://www.debian.org/images/logo.png", b"\x89PNG\r\n\x1a\n" + bytes(64),
        "image/png")
    add("bad_charset", "https://example.cn/bad", b"<html><body><p>\x80\xff\xfe broken \xff</p>"
        b"</body></html>", "text/html; charset=x-no-such-charset")
    add("tw", "https://www.debian.org/doc/manuals/debian-reference/apa.zh-tw.html",
        debian_page("apa", "zh-tw").read_bytes(), "text/html; charset=UTF-8")
    add("truncated", "https://example.cn/last", debian_page("apa").read_bytes(), "text/html")
    data = buf.getvalue()
    path.write_bytes(data[:len(data) - 200])  # the last gzip member loses its end
    return offsets


def test_warc_every_record_ends_in_one_place(tmp_path):
    warc = tmp_path / "crawl.warc.gz"
    off = _warc(warc)
    db = tmp_path / "s.sqlite"
    out = run("construct", "ingest", str(warc), "--db", str(db), "--to-simplified")
    stored, bad = sources(db), quarantine(db)
    where = {name: f"{warc}:{o}" for name, o in off.items()}
    for n in (*PAGES, "tw"):
        src = stored[where[n]]
        assert src.status == "ok", (n, src.filter_reason)
        assert src.provenance.source_url.endswith(".html") and src.meta["warc_date"]
    assert stored[where["image"]].filter_reason == "not_html: image/png"
    assert stored[where["image"]].text == ""
    assert "x-no-such-charset" in bad[where["bad_charset"]]
    assert "truncated" in bad[where["truncated"]]
    # 7 response records: 5 stored (4 ok, 1 not HTML), 2 quarantined; the warcinfo is no page
    assert len(stored) + len(bad) == 7 and where["warcinfo"] not in stored
    assert "read 7, added 4" in out
    # a second ingest adds nothing and loses nothing
    again = run("construct", "ingest", str(warc), "--db", str(db), "--to-simplified")
    assert "added 0, already stored 5" in again and sources(db).keys() == stored.keys()


def test_ray_ingest_stores_what_local_ingest_stores(tmp_path):
    ray = pytest.importorskip("ray")
    from coig_writer.construct.web.ray_ingest import ingest_ray

    warc = tmp_path / "crawl.warc.gz"
    _warc(warc)
    folder = tmp_path / "more"
    folder.mkdir()
    for name in ("dated-jsonld.html", "popular.html", "forum.html"):
        (folder / name).write_bytes((DATA / name).read_bytes())
    opts = IngestOptions(to_simplified=True, where=parse_conditions(["likes>=5000"]),
                         web=ExtractOptions(signals=load_sites(DATA / "sites.yaml")))

    def stored(db: Path) -> list[tuple]:
        with Store(db) as st:
            return sorted((s.id, s.status, s.filter_reason, s.duplicate_of, s.provenance.origin,
                           s.text) for s in st.corpus.iter_sources(None)), \
                sorted((q.where, q.error) for q in st.corpus.iter_quarantine())

    with Store(tmp_path / "local.sqlite") as st:
        ingest([warc, folder], st, opts)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with Store(tmp_path / "ray.sqlite") as st:  # 64 KiB shards: the WARC is split
            report = ingest_ray([warc, folder], st, opts, workers=2, shard_mb=1 / 16)
    finally:
        ray.shutdown()
    assert report.read == 10
    local = stored(tmp_path / "local.sqlite")
    assert stored(tmp_path / "ray.sqlite") == local
    assert sum(s[1] == "ok" for s in local[0]) == 2  # popular (JSON-LD) and forum (selectors)


def test_dates_through_the_cutoff(tmp_path):
    names = ("dated-jsonld", "dated-meta", "dated-text", "undated", "old")
    folder = tmp_path / "pages"
    folder.mkdir()
    for n in names:
        (folder / f"{n}.html").write_bytes((DATA / f"{n}.html").read_bytes())
    db = tmp_path / "s.sqlite"
    run("construct", "ingest", str(folder), "--db", str(db), "--after", "2022-10-31",
        "--require-date")
    got = {Path(o).stem.split(".")[0]: s for o, s in sources(db).items()}
    assert {n: (str(s.provenance.date), s.meta.get("date_method")) for n, s in got.items()} == {
        "dated-jsonld": ("2023-03-05", "json-ld"), "dated-meta": ("2023-04-06", "meta"),
        "dated-text": ("2023-05-07", "text"), "undated": ("None", None),
        "old": ("2021-06-01", "json-ld")}
    assert {n: s.filter_reason for n, s in got.items() if s.status == "filtered"} == {
        "undated": "no_date: a date is required", "old": "before_cutoff: 2021-06-01 <= 2022-10-31"}
    for s in got.values():  # the site's navigation and footer are not in the texts
        assert "散文频道" not in s.text and "版权所有" not in s.text


def test_where_likes_from_json_ld_and_site_selectors(tmp_path):
    folder = tmp_path / "pages"
    folder.mkdir()
    for n in ("popular", "unpopular", "undated", "forum"):
        (folder / f"{n}.html").write_bytes((DATA / f"{n}.html").read_bytes())
    db = tmp_path / "s.sqlite"
    run("construct", "ingest", str(folder), "--db", str(db), "--where", "likes>=5000")
    got = {Path(o).stem.split(".")[0]: s for o, s in sources(db).items()}
    assert got["popular"].status == "ok" and got["popular"].meta["likes"] == 12000
    assert got["popular"].meta["comments"] == 356
    assert got["unpopular"].filter_reason == "where: likes=300 fails likes>=5000"
    assert got["undated"].filter_reason == "where: no likes (needs likes>=5000)"
    assert got["forum"].filter_reason == "where: no likes (needs likes>=5000)"
    # the forum page marks its votes only in its HTML: a site's CSS selectors read them
    db2 = tmp_path / "s2.sqlite"
    run("construct", "ingest", str(folder), "--db", str(db2), "--signals", str(DATA / "sites.yaml"),
        "--where", "likes>=5000", "--where", "featured==true")
    got = {Path(o).stem.split(".")[0]: s for o, s in sources(db2).items()}
    assert got["forum"].status == "ok" and got["forum"].meta["likes"] == 12000
    assert got["popular"].filter_reason == "where: featured=false fails featured==true"
    bad = tmp_path / "bad.yaml"
    bad.write_text("essays.example.cn:\n  likes: {selector: 'div[', attr: x}\n", "utf-8")
    result = runner.invoke(app, ["construct", "ingest", str(folder), "--db", str(db2),
                                 "--signals", str(bad)])
    assert result.exit_code == 2 and "bad CSS selector" in result.output


def test_verse_keeps_its_lines_and_bad_charset_page_is_quarantined(tmp_path):
    folder = tmp_path / "pages"
    folder.mkdir()
    (folder / "verse.html").write_bytes((DATA / "verse.html").read_bytes())
    (folder / "broken.htm").write_bytes(b'<html><head><meta charset="klingon-8"></head><body>'
                                        b"<p>\xff\xfe\x80 text</p></body></html>")
    db = tmp_path / "s.sqlite"
    run("construct", "ingest", str(folder), "--db", str(db))
    (src,) = sources(db).values()
    assert "床前明月光，\n疑是地上霜。\n举头望明月，\n低头思故乡。" in src.text
    assert "唐诗三百首" not in src.text and src.provenance.title == "静夜思"
    (error,) = quarantine(db).items()
    assert error[0] == f"{folder / 'broken.htm'}:1" and "klingon-8 (unknown charset)" in error[1]


def test_prefilters_each_name_their_reason():
    cfg = PrefilterConfig()
    clean = "那年冬天，祖父在院子里种下一棵枣树。\n他说，等它结果的时候，你就长大了。\n后来我离开了小城。"
    assert failures(clean, cfg) == []
    assert failures("This page is in English, with no Chinese at all. " * 3, cfg)[0] \
        .startswith("han_share")
    assert any(f.startswith("repeated_lines") for f in failures("点赞\n" * 3 + clean, cfg))
    boiler = "版权所有 2023\n扫码关注公众号\n上一篇 下一篇\n" + clean
    assert any(f.startswith("boilerplate") for f in failures(boiler, cfg))
    assert any(f.startswith("long_sentences") for f in failures("没有标点的文字" * 60, cfg))
    listy = "\n".join(f"{i}. 第{i}章 入口" for i in range(1, 8))
    assert {f.split(":")[0] for f in failures(listy, cfg)} >= {"lists", "line_punctuation"}
    links = "\n".join(f"好文推荐 https://example.cn/{i}" for i in range(6))
    assert any(f.startswith("links") for f in failures(links, cfg))
    assert failures(boiler, PrefilterConfig(max_boilerplate_lines=None)) == []
    assert parse_count("1.2万") == 12000 and parse_count("3,456 赞") == 3456 and parse_count("x") is None


def test_stats_and_prefilter_options(tmp_path):
    folder = tmp_path / "pages"
    folder.mkdir()
    for n in ("popular", "undated", "verse"):
        (folder / f"{n}.html").write_bytes((DATA / f"{n}.html").read_bytes())
    (folder / "list.txt").write_text("\n".join(f"- 第{i}章 入口 见 https://x.cn/{i}"
                                               for i in range(1, 9)), "utf-8")
    db = tmp_path / "s.sqlite"
    out = run("construct", "ingest", str(folder), "--db", str(db), "--stats", "--json",
              "--after", "2022-10-31")
    stats = json.loads(out[out.index("{"):])
    assert stats["texts"] == 4 and stats["removes"]["lists"] == 1 and stats["removes"]["links"] == 1
    assert stats["removes"]["no_date"] == 3 and stats["first"] == {"no_date": 3}  # pre-filters off
    assert not db.exists()  # --stats writes nothing
    table = run("construct", "ingest", str(folder), "--db", str(db), "--stats", "--prefilter")
    assert "line_punctuation" in table and "boilerplate" in table
    run("construct", "ingest", str(folder), "--db", str(db), "--prefilter")
    got = {Path(o).name.split(":")[0]: s for o, s in sources(db).items()}
    assert got["list.txt"].filter_reason.split(":")[0] in PrefilterConfig().names
    assert all(s.status == "ok" for n, s in got.items() if n != "list.txt")
    cfg = tmp_path / "loose.yaml"
    cfg.write_text("max_link_lines: null\nmax_list_lines: null\nmin_line_punct: null\n"
                   "min_han_share: null\n", "utf-8")
    out = run("construct", "refilter", "--db", str(db), "--prefilter-config", str(cfg))
    assert "changed 1 texts" in out
    cfg.write_text("max_links: 3\n", "utf-8")
    result = runner.invoke(app, ["construct", "ingest", str(folder), "--db", str(db),
                                 "--prefilter-config", str(cfg)])
    assert result.exit_code == 2 and "max_links" in result.output


def _small_warc(n: int = 6) -> tuple[bytes, list[int]]:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    buf, offsets = io.BytesIO(), []
    writer = WARCWriter(buf, gzip=True)
    for i in range(n):
        offsets.append(buf.tell())
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
        body = f"<html><body><p>第{i}页：{'春眠不觉晓，处处闻啼鸟。' * (i + 1)}</p></body></html>"
        writer.write_record(writer.create_warc_record(f"https://x.cn/{i}", "response",
                                                      payload=io.BytesIO(body.encode()),
                                                      http_headers=http))
    return buf.getvalue(), offsets


def test_warc_reader_resynchronises_and_splits_into_ranges(tmp_path):
    from coig_writer.construct.web.warc import iter_warc

    data, offs = _small_warc()
    path = tmp_path / "a.warc.gz"
    path.write_bytes(data)
    whole = [(i.offset, i.error is None and i.payload is not None) for i in iter_warc(path)]
    assert whole == [(o, True) for o in offs]
    # every split into byte ranges reads each record exactly once
    for step in (1, 97, 500, len(data) // 2):
        parts = [i.offset for start in range(0, len(data), step)
                 for i in iter_warc(path, start, start + step if start + step < len(data) else None)]
        assert parts == offs, step
    # a corrupt member in the middle and garbage between two records: reported by offset,
    # every other record still read
    bad = bytearray(data)
    bad[offs[2] + 30:offs[2] + 50] = bytes(20)
    bad = bytes(bad[:offs[4]]) + b"garbage!" + bytes(bad[offs[4]:])
    path.write_bytes(bad)
    got = [(i.offset, "error" if i.error else "page") for i in iter_warc(path)]
    assert got == [(offs[0], "page"), (offs[1], "page"), (offs[2], "error"), (offs[3], "page"),
                   (offs[4], "error"), (offs[4] + 8, "page"), (offs[5] + 8, "page")]
