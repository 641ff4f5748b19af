import datetime as dt
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from coig_writer.cli import app
from coig_writer.construct.filters import (
    MinHasher,
    candidate_probability,
    char_shingles,
    estimated_jaccard,
    jaccard,
    lsh_layout,
    normalize_fast,
)
from coig_writer.construct.ingest import IngestOptions, ingest, refilter
from coig_writer.readers import InputError
from coig_writer.records import Triplet, normalize_text
from coig_writer.store import Store

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
    errors = {q.where: q.error for q in store.corpus.iter_quarantine()}
    assert "invalid JSON" in errors[f"{c}:2"]
    assert "no text field" in errors[f"{c}:3"]
    assert "unparseable date" in errors[f"{c}:6"]
    assert report.filtered == {"too_short": 1}
    srcs = {s.provenance.title or s.id: s for s in store.corpus.iter_sources(None)}
    a = srcs["游子吟"]
    assert a.provenance.source_url == "https://example.org/a"
    assert str(a.provenance.date) == "2023-05-01" and a.provenance.license == "CC-BY"
    assert a.provenance.origin == str(folder / "a.md") + ":1"
    assert store.corpus.get_source("p2").provenance.date.isoformat() == "2024-01-02"
    # every row is accounted for: stored ok, stored filtered, or quarantined
    assert len(list(store.corpus.iter_sources(None))) + len(report.quarantined) == report.read


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
    filtered = [s for s in store.corpus.iter_sources("filtered")]
    ok_id = next(store.corpus.iter_sources("ok")).id
    assert {s.duplicate_of for s in filtered if s.duplicate_of} == {ok_id}
    again = ingest([path], store, opts)
    assert again.added == 0 and again.already_stored == 5 and not again.quarantined
    assert store.corpus.count_sources() == {"ok": 1, "filtered": 4}


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
    texts = {s.text for s in store.corpus.iter_sources()}
    assert POEM2 in texts  # paragraphs joined by newlines


def test_missing_path_is_an_error(tmp_path, store):
    with pytest.raises(InputError, match="nope"):
        ingest([tmp_path / "nope"], store)


# -- near-duplicate index at scale -----------------------------------------------------------
HANZI = [chr(c) for c in range(0x4E00, 0x4E00 + 2500)]


def rand_text(r: random.Random, n: int) -> str:
    return "，".join("".join(r.choice(HANZI) for _ in range(9)) for _ in range(n // 10)) + "。"


def near_copy(r: random.Random, text: str, lo: float, hi: float) -> tuple[str, float]:
    """A copy of `text` with characters replaced until its 5-shingle Jaccard is in [lo, hi)."""
    base = char_shingles(text, 5)
    while True:
        chars = list(text)
        while (j := jaccard(base, char_shingles("".join(chars), 5))) >= hi:
            i = r.randrange(len(chars))
            if chars[i] not in "，。":
                chars[i] = r.choice(HANZI)
        if j >= lo:
            return "".join(chars), j


def test_lsh_layout_recall_at_threshold():
    assert lsh_layout(0.8) == (20, 6)
    for t in (0.6, 0.7, 0.8, 0.9):
        bands, rows = lsh_layout(t)
        assert bands * rows <= 120 and candidate_probability(t, bands, rows) >= 0.99
    assert candidate_probability(0.8, 9, 13) < 0.5  # datasketch's layout for 0.8
    assert char_shingles("春，风！", 2) == {"春风"}


def test_fast_normalization_matches_records():
    for t in [POEM, PROSE, "  Ｈｅｌｌｏ，\u3000世界！\r\n（ＡＢＣ）１２３ ", "Ａ\u0301ｂ",
              "ﾊﾝｶｸ ｶﾀｶﾅ㍻", ""]:
        assert normalize_fast(t) == normalize_text(t)


def test_minhash_estimates_jaccard():
    r = random.Random(3)
    mh = MinHasher()
    a = rand_text(r, 400)
    b, j = near_copy(r, a, 0.7, 0.8)
    sig = mh.signatures([a, b, rand_text(r, 400), "", "短"])
    assert abs(estimated_jaccard(sig[0], sig[1]) - j) < 0.15
    assert estimated_jaccard(sig[0], sig[2]) < 0.1
    assert (sig[3] == 0xFFFFFFFF).all() and not (sig[4] == 0xFFFFFFFF).all()
    assert (mh.signatures([a])[0] == sig[0]).all()  # independent of the batch it is in


def test_near_dups_across_runs_hash_only_new_texts(tmp_path, store):
    r = random.Random(1)
    originals = [rand_text(r, 300) for _ in range(60)]
    first = write_jsonl(tmp_path / "a.jsonl", [{"id": f"a{i}", "text": t}
                                               for i, t in enumerate(originals)])
    rep1 = ingest([first], store, IngestOptions(batch_size=16))
    assert (rep1.added, rep1.hashed, rep1.indexed, rep1.batches) == (60, 60, 0, 4)
    dups = {f"b{i}": near_copy(r, originals[i], 0.8, 0.95)[0] for i in range(0, 60, 3)}
    fresh = {f"c{i}": rand_text(r, 300) for i in range(10)}
    second = write_jsonl(tmp_path / "b.jsonl", [{"id": k, "text": v}
                                                for k, v in {**dups, **fresh}.items()])
    rep2 = ingest([second], store, IngestOptions(batch_size=16))
    assert rep2.indexed == 60  # the first run's signatures were reused ...
    assert rep2.hashed == 30  # ... and only this run's texts were hashed
    assert rep2.added == 10 and rep2.filtered == {"near_duplicate": 20}
    for k in dups:
        src = store.corpus.get_source(k)
        assert src.duplicate_of == f"a{k[1:]}", src.filter_reason
    rep3 = ingest([first, second], store)
    assert rep3.hashed == 0 and rep3.already_stored == 90


def test_recall_at_threshold_on_planted_pairs(tmp_path, store):
    r = random.Random(7)
    rows, above, below = [], [], []
    for i in range(100):
        base = rand_text(r, r.randrange(200, 600))
        rows.append({"id": f"o{i}", "text": base})
        if i % 2:
            above.append(f"d{i}")
            rows.append({"id": f"d{i}", "text": near_copy(r, base, 0.8, 0.9)[0]})
        else:
            below.append(f"d{i}")
            rows.append({"id": f"d{i}", "text": near_copy(r, base, 0.55, 0.78)[0]})
    r.shuffle(rows)  # originals and copies in any order: whichever comes second is the dup
    ingest([write_jsonl(tmp_path / "p.jsonl", rows)], store, IngestOptions(batch_size=64))
    filtered = {s.id: s for s in store.corpus.iter_sources("filtered")}
    caught = [d for d in above if d in filtered or f"o{d[1:]}" in filtered]
    assert len(caught) >= 49  # of 50 at Jaccard 0.8-0.9 (P(candidate) >= 0.998 each)
    assert not [d for d in below if d in filtered or f"o{d[1:]}" in filtered]
    assert all(s.filter_reason.startswith("near_duplicate") for s in filtered.values())


def _ingest_rows(r: random.Random, n: int) -> list[object]:
    rows: list[object] = []
    texts: list[str] = []
    for i in range(n):
        if i % 97 == 5:
            rows.append("{broken json")
        elif i % 50 == 7 and texts:
            rows.append({"text": r.choice(texts)})  # exact copy, from another line
        elif i % 40 == 3 and texts:
            rows.append({"text": near_copy(r, r.choice(texts), 0.85, 0.95)[0]})
        else:
            texts.append(rand_text(r, r.randrange(150, 400)))
            rows.append({"text": texts[-1], "date": "2023-01-01" if i % 3 else None})
    return rows


def _placement(db: Path) -> dict[str, str]:
    """Input file:line -> where the row ended (status/reason, or quarantine)."""
    with Store(db) as s:
        out: dict[str, str] = {}
        for src in s.corpus.iter_sources(None):
            assert src.provenance.origin not in out
            out[src.provenance.origin] = f"{src.status}:{(src.filter_reason or '').split(' ')[0]}"
        for q in s.corpus.iter_quarantine():
            assert q.where not in out
            out[q.where] = "quarantined"
        orphans = s.db.execute("SELECT COUNT(*) FROM minhash m LEFT JOIN sources s "
                               "ON s.id=m.source_id WHERE s.id IS NULL").fetchone()[0]
        assert orphans == 0
    return out


def test_batch_commits_resume_after_kill(tmp_path):
    src = write_jsonl(tmp_path / "big.jsonl", _ingest_rows(random.Random(5), 6000))
    db = tmp_path / "k.sqlite"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "coig_writer.cli", "construct", "ingest",
                             str(src), "--db", str(db), "--batch-size", "100"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stored = 0
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if db.exists():
            with sqlite3.connect(db, timeout=30) as con:
                try:
                    stored = con.execute("SELECT COUNT(*) FROM sources").fetchone()[0]
                except sqlite3.OperationalError:  # schema not created yet
                    stored = 0
            if stored >= 300:
                break
        time.sleep(0.01)
    assert proc.poll() is None, "ingest finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    placed = _placement(db)
    assert 300 <= len(placed) < 6000  # killed mid-run, committed whole batches only
    assert len(placed) % 100 == 0
    with Store(db) as s:
        rep = ingest([src], s, IngestOptions(batch_size=100))
    assert rep.already_stored + len([q for q in rep.quarantined]) >= len(placed) - 100
    after = _placement(db)
    assert len(after) == 6000 and {k: after[k] for k in placed} == placed
    clean = tmp_path / "clean.sqlite"
    with Store(clean) as s:
        ingest([src], s, IngestOptions(batch_size=1000))
    assert _placement(clean) == after  # same outcome as a run that was never killed
    with Store(clean) as s:  # ingest and refilter decide alike
        assert refilter(s, IngestOptions(), dry_run=True).changed == 0
    assert {"ok:", "filtered:exact_duplicate", "filtered:near_duplicate", "quarantined"} <= set(
        after.values())


def test_refilter_round_trip(tmp_path, store):
    r = random.Random(11)
    undated = [rand_text(r, 200) for _ in range(10)]
    rows = [{"id": f"u{i}", "text": t} for i, t in enumerate(undated)]
    rows += [{"id": "old", "text": rand_text(r, 200), "date": "2021-05-01"},
             {"id": "new", "text": rand_text(r, 200), "date": "2024-05-01"},
             {"id": "u0-copy", "text": near_copy(r, undated[0], 0.85, 0.95)[0]}]
    path = write_jsonl(tmp_path / "r.jsonl", rows)
    cutoff = dt.date(2022, 10, 31)
    first = ingest([path], store, IngestOptions(after=cutoff))
    assert first.filtered == {"no_date": 11, "before_cutoff": 1} and first.added == 1
    assert refilter(store, IngestOptions(after=cutoff)).changed == 0
    again = ingest([path], store)  # without --after: reported, not silently changed
    assert again.added == 0 and again.already_stored == 13
    assert again.would_change == {"no_date -> ok": 11, "before_cutoff -> ok": 1}
    assert store.corpus.count_sources() == {"ok": 1, "filtered": 12}

    db = str(store.path)
    runner = CliRunner()
    dry = runner.invoke(app, ["construct", "refilter", "--db", db, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would change 12 texts" in dry.output
    assert store.corpus.count_sources() == {"ok": 1, "filtered": 12}
    res = runner.invoke(app, ["construct", "refilter", "--db", db])
    assert res.exit_code == 0, res.output
    assert "before_cutoff -> ok: 1" in res.output and "no_date -> ok: 10" in res.output
    assert "no_date -> near_duplicate: 1" in res.output  # the copy's original is back
    assert store.corpus.get_source("u0-copy").duplicate_of == "u0"
    assert store.corpus.count_sources() == {"ok": 12, "filtered": 1}
    assert "changed 0 texts" in runner.invoke(app, ["construct", "refilter", "--db", db]).output

    # a text with a triplet is reported, not changed, unless asked
    store.construct.put_triplet(Triplet(id="cw-u3", answer=undated[3], source_id="u3"))
    back = refilter(store, IngestOptions(after=cutoff))
    assert back.changes == {"ok -> no_date": 9, "ok -> before_cutoff": 1,
                            "near_duplicate -> no_date": 1}
    assert back.constructed == [("u3", "ok -> no_date")]
    assert store.corpus.get_source("u3").status == "ok"
    assert refilter(store, IngestOptions(after=cutoff)).changed == 0  # idempotent
    forced = refilter(store, IngestOptions(after=cutoff), touch_constructed=True)
    assert forced.changes == {"ok -> no_date": 1} and store.corpus.get_source("u3").status == "filtered"


def test_old_store_is_indexed_once_and_layout_follows_threshold(tmp_path, store):
    r = random.Random(2)
    originals = [rand_text(r, 300) for _ in range(20)]
    ingest([write_jsonl(tmp_path / "a.jsonl", [{"id": f"a{i}", "text": t}
                                               for i, t in enumerate(originals)])], store)
    store.db.execute("DELETE FROM minhash_bands")  # a store written before the index existed
    store.db.execute("DELETE FROM minhash")
    copy = near_copy(r, originals[4], 0.72, 0.78)[0]
    rep = ingest([write_jsonl(tmp_path / "b.jsonl", [{"id": "b", "text": copy}])], store)
    assert (rep.backfilled, rep.hashed, rep.added) == (20, 1, 1)  # 0.72-0.78 < 0.8: kept
    rep = ingest([write_jsonl(tmp_path / "c.jsonl", [{"id": "c", "text": copy + "。"}])], store,
                 IngestOptions(near_dup_threshold=0.7))
    assert (rep.backfilled, rep.hashed, rep.layout) == (0, 1, "30x4")  # re-keyed, not re-hashed
    assert store.corpus.get_source("c").filter_reason.startswith("near_duplicate of b")
    back = refilter(store, IngestOptions(near_dup_threshold=0.7))
    assert back.changes == {"ok -> near_duplicate": 1,  # b: a near duplicate of a4 at 0.7
                            "near_duplicate -> near_duplicate (another original)": 1}  # c
    assert back.hashed == 0
    assert store.corpus.get_source("b").duplicate_of == "a4" == store.corpus.get_source("c").duplicate_of
