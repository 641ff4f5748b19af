import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from coig_writer.construct.filters import NearDupIndex, char_shingles
from coig_writer.construct.ingest import IngestOptions, ingest

POEM = "慈母手中线，游子身上衣。\n临行密密缝，意恐迟迟归。\n谁言寸草心，报得三春晖。"
POEM2 = "独怜幽草涧边生，上有黄鹂深树鸣。\n春潮带雨晚来急，野渡无人舟自横。"
PROSE = ("那年冬天，祖父在院子里种下一棵枣树。他说，等它结果的时候，你就长大了。"
         "后来我离开了小城，枣树一年一年地开花，祖父一年一年地老去。")


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False))
                            + "\n" for r in rows), "utf-8")
    return path


def test_formats_provenance_and_bad_lines(tmp_path, store):
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "a.md").write_text(
        "---\nsource_url: https://example.org/a\ndate: 2023-05-01\nlicense: CC-BY\n---\n"
        f"# 游子吟\n{POEM}\n", "utf-8")
    (folder / "b.txt").write_text(PROSE, "utf-8")
    (folder / "bad.txt").write_bytes(b"\xff\xfe\x00bad")
    write_jsonl(folder / "c.jsonl", [
        {"id": "p2", "content": POEM2, "url": "https://example.org/p2", "published": "2024-01-02"},
        "{not json",
        {"title": "no text here"},
        [1, 2],
        {"text": "短", "date": "2023-01-01"},
        {"text": PROSE + "又一年", "date": "yesterday"},
    ])
    report = ingest([folder], store, IngestOptions())
    assert report.read == 9
    assert report.added == 3
    where = sorted(q.where for q in report.quarantined)
    c = str(folder / "c.jsonl")
    assert where == sorted([str(folder / "bad.txt") + ":1", f"{c}:2", f"{c}:3", f"{c}:4", f"{c}:6"])
    errors = {q.where: q.error for q in store.iter_quarantine()}
    assert "invalid JSON" in errors[f"{c}:2"]
    assert "no text field" in errors[f"{c}:3"]
    assert "unparseable date" in errors[f"{c}:6"]
    assert report.filtered == {"too_short": 1}
    srcs = {s.provenance.title or s.id: s for s in store.iter_sources(None)}
    a = srcs["游子吟"]
    assert a.provenance.source_url == "https://example.org/a"
    assert str(a.provenance.date) == "2023-05-01" and a.provenance.license == "CC-BY"
    assert a.provenance.origin == str(folder / "a.md") + ":1"
    assert store.get_source("p2").provenance.date.isoformat() == "2024-01-02"
    # every row is accounted for: stored ok, stored filtered, or quarantined
    assert len(list(store.iter_sources(None))) + len(report.quarantined) == report.read


def test_dedup_date_and_idempotent_reingest(tmp_path, store):
    near = POEM.replace("寸草心", "小草心")  # one character changed
    rows = [{"text": POEM, "date": "2023-01-01"}, {"text": POEM + "\n", "date": "2023-02-01"},
            {"text": near, "date": "2023-03-01"}, {"text": PROSE, "date": "2021-06-01"},
            {"text": POEM2}]
    path = write_jsonl(tmp_path / "x.jsonl", rows)
    opts = IngestOptions(after=__import__("datetime").date(2022, 10, 31), shingle=3)
    report = ingest([path], store, opts)
    assert report.added == 1
    assert report.filtered == {"exact_duplicate": 1, "near_duplicate": 1, "before_cutoff": 1,
                               "no_date": 1}
    filtered = [s for s in store.iter_sources("filtered")]
    ok_id = next(store.iter_sources("ok")).id
    assert {s.duplicate_of for s in filtered if s.duplicate_of} == {ok_id}
    again = ingest([path], store, opts)
    assert again.added == 0 and again.already_stored == 5 and not again.quarantined
    assert store.count_sources() == {"ok": 1, "filtered": 4}


def test_id_conflict_is_quarantined(tmp_path, store):
    path = write_jsonl(tmp_path / "x.jsonl", [{"id": "a", "text": POEM}, {"id": "a", "text": PROSE}])
    report = ingest([path], store)
    assert report.added == 1
    assert [q.where for q in report.quarantined] == [f"{path}:2"]
    assert "already stored with a different text" in report.quarantined[0].error


def test_parquet_and_json_array(tmp_path, store):
    pq.write_table(pa.Table.from_pylist([{"text": POEM, "title": "t1"}, {"text": None}]),
                   tmp_path / "x.parquet")
    (tmp_path / "y.json").write_text(json.dumps(
        [{"title": "滁州西涧", "paragraphs": POEM2.split("\n")}, "oops"], ensure_ascii=False))
    report = ingest([tmp_path / "x.parquet", tmp_path / "y.json"], store)
    assert report.added == 2
    assert sorted(q.where for q in report.quarantined) == [f"{tmp_path / 'x.parquet'}:2",
                                                           f"{tmp_path / 'y.json'}:2"]
    texts = {s.text for s in store.iter_sources()}
    assert POEM2 in texts  # paragraphs joined by newlines


def test_missing_path_is_an_error(tmp_path, store):
    with pytest.raises(FileNotFoundError, match="nope"):
        ingest([tmp_path / "nope"], store)


def test_near_dup_index_threshold():
    idx = NearDupIndex(threshold=0.8, ngram=3)
    assert idx.check_and_add("a", PROSE) is None
    dup = idx.check_and_add("b", PROSE.replace("祖父", "外公", 1))
    assert dup is not None and dup[0] == "a" and dup[1] >= 0.8
    assert idx.check_and_add("c", POEM) is None
    assert len(idx) == 2
    assert char_shingles("春，风！", 2) == {"春风"}
