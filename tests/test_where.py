"""`--where` conditions on source metadata in `construct ingest` and `refilter`: numbers,
booleans and strings, clear errors, filter reasons, and the conditions on the dataset card."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from coig_writer.cli import app
from coig_writer.construct.where import WhereError, parse_condition
from coig_writer.dataset.publish import PublishOptions, publish
from coig_writer.records import Triplet
from coig_writer.store import Store

ROWS = [
    {"id": "a", "text": "床前明月光，疑是地上霜。举头望明月，低头思故乡。", "likes": 12000, "featured": True,
     "platform": "weibo"},
    {"id": "b", "text": "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。", "likes": 800, "featured": True,
     "platform": "douban"},
    {"id": "c", "text": "春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。", "likes": "9,500",
     "featured": "false", "platform": "weibo"},
    {"id": "d", "text": "千山鸟飞绝，万径人踪灭。孤舟蓑笠翁，独钓寒江雪。", "likes": "many",
     "featured": True},
    {"id": "e", "text": "红豆生南国，春来发几枝。愿君多采撷，此物最相思。", "featured": True,
     "stats": {"comments": 150}},
]


def test_parse_conditions_and_their_errors() -> None:
    c = parse_condition("likes >= 5000")
    assert (c.field, c.op, c.value, str(c)) == ("likes", ">=", 5000, "likes>=5000")
    assert parse_condition("featured==TRUE").value is True
    assert parse_condition('title=="a b"').value == "a b" and parse_condition("p=weibo").op == "=="
    assert parse_condition("stats.comments>100").reason({"stats": {"comments": 150}}) is None
    for bad, msg in (("likes>>5", "cannot read"), ("platform>=weibo", "compares numbers"),
                     ("featured<true", "compares numbers"), ("likes>=", "cannot read")):
        with pytest.raises(WhereError, match=msg):
            parse_condition(bad)


def test_ingest_and_refilter_where(tmp_path) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ROWS), "utf-8")
    db = tmp_path / "s.sqlite"
    run = CliRunner()
    r = run.invoke(app, ["construct", "ingest", str(corpus), "--db", str(db), "--where", "lkes>=5000"])
    assert r.exit_code == 2 and "no text has the field(s) ['lkes']" in r.output
    assert "likes" in r.output and "stats.comments" in r.output
    with Store(db) as s:
        assert s.corpus.count_sources() == {}  # nothing written
    r = run.invoke(app, ["construct", "ingest", str(corpus), "--db", str(db), "--where",
                         "platform>weibo"])
    assert r.exit_code == 2 and "compares numbers" in r.output

    r = run.invoke(app, ["construct", "ingest", str(corpus), "--db", str(db), "--where",
                         "likes>=5000", "--where", "featured==true"])
    assert r.exit_code == 0, r.output
    with Store(db) as s:
        why = {x.id: x.filter_reason for x in s.corpus.iter_sources(None)}
        assert json.loads(s.corpus.corpus_meta("where")) == ["likes>=5000", "featured==true"]
    assert why["a"] is None
    assert why["b"] == "where: likes=800 fails likes>=5000"
    assert why["c"] == 'where: featured="false" fails featured==true'  # "9,500" is a number
    assert why["d"] == 'where: likes is "many", not a number (likes>=5000)'
    assert why["e"] == "where: no likes (needs likes>=5000)"

    r = run.invoke(app, ["construct", "refilter", "--db", str(db), "--where", "featured!=false"])
    assert r.exit_code == 0 and "where -> ok: 3" in r.output, r.output
    with Store(db) as s:
        ok = {x.id for x in s.corpus.iter_sources("ok")}
        assert ok == {"a", "b", "d", "e"}
        s.construct.put_triplet(Triplet(id="cw-a", query="写一首思乡的诗", thought="先想意象。" * 10,
                              answer=ROWS[0]["text"], source_id="a", status="accepted"))
        publish(s, tmp_path / "pub", PublishOptions(decontam_sets=()))
    card = (tmp_path / "pub" / "README.md").read_text("utf-8")
    assert "Source metadata conditions (all must hold" in card and "`featured!=false`" in card
    assert "| where | 1 |" in card
