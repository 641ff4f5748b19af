import json

import pyarrow.parquet as pq
import pytest

from coig_writer.dataset.io import export_triplets, import_triplets
from coig_writer.dataset.stats import group_stats
from coig_writer.genres import load_taxonomy
from coig_writer.records import Scores, Triplet
from coig_writer.store import Store


def make(i: int, cat: str, q: str, t: str, a: str, status: str = "accepted") -> Triplet:
    return Triplet(id=f"t{i}", query=q, thought=t, answer=a, category=cat, status=status,
                   scores=Scores(prompt_quality=9, prompt_creativity=8, reasoning_quality=8,
                                 reasoning_creativity=8, text_quality=9, text_creativity=9))


def test_triplets_are_upserted_not_duplicated(store):
    t = make(1, "poetry", "写诗", "想", "诗")
    store.construct.put_triplet(t)
    t.status = "rejected"
    store.construct.put_triplet(t)
    assert store.construct.count_triplets() == {"rejected": 1}
    assert store.construct.get_triplet("t1").status == "rejected"


def test_store_survives_reopen(tmp_path):
    path = tmp_path / "s.sqlite"
    with Store(path) as s:
        s.cache.cache_put("k", "m", {"messages": []}, "answer", {"total_tokens": 3}, 0.1)
    with Store(path) as s:
        assert s.cache.cache_get("k") == {"text": "answer", "usage": {"total_tokens": 3}, "thinking": "",
                                    "finish_reason": None, "unusable": None, "logprobs": None}
        assert s.cache.cache_get("missing") is None


@pytest.mark.parametrize("suffix", ["jsonl", "parquet"])
def test_export_import_roundtrip(tmp_path, store, suffix):
    store.construct.put_triplet(make(1, "poetry", "写一首诗", "用户想要……", "床前明月光"))
    store.construct.put_triplet(make(2, "novel", "写小说", "首先……", "从前", status="needs_review"))
    out = tmp_path / f"cw.{suffix}"
    assert export_triplets(store, out) == 1
    if suffix == "jsonl":
        row = json.loads(out.read_text("utf-8").splitlines()[0])
    else:
        row = pq.read_table(out).to_pylist()[0]
    assert {k: row[k] for k in ("id", "query", "thought", "answer")} == {
        "id": "t1", "query": "写一首诗", "thought": "用户想要……", "answer": "床前明月光"}
    full = tmp_path / f"full.{suffix}"
    assert export_triplets(store, full, status=None, full=True) == 2
    with Store(tmp_path / "other.sqlite") as other:
        added, bad = import_triplets(other, full)
        assert (added, bad) == (2, [])
        back = other.construct.get_triplet("t2")
        assert back.status == "needs_review" and back.scores.total == 51


def test_import_released_format_quarantines_bad_rows(tmp_path, store):
    path = tmp_path / "released.jsonl"
    path.write_text("\n".join([
        json.dumps({"id": 7, "query": "写一则段子", "thought": "用户想要", "answer": "哈哈",
                    "query_type": "趣味文学"}, ensure_ascii=False),
        json.dumps({"id": 8, "query": "缺答案", "thought": "想"}, ensure_ascii=False),
        "{broken",
    ]) + "\n", "utf-8")
    added, bad = import_triplets(store, path)
    assert added == 1
    assert [(b.line, b.error.split(" ")[0]) for b in bad] == [(2, "missing"), (3, "invalid")]
    t = store.construct.get_triplet("7")
    assert t.category == "funny" and t.status == "accepted"
    assert len(list(store.corpus.iter_quarantine())) == 2


def test_group_stats_hand_computed():
    ts = [make(1, "poetry", "a" * 10, "b" * 100, "c" * 20), make(2, "poetry", "a" * 30, "b" * 300,
          "c" * 40), make(3, "novel", "a" * 50, "b" * 500, "c" * 1000)]
    rows, total = group_stats(ts, by="category")
    poetry = next(r for r in rows if r.name == "Poetry")
    assert poetry.count == 2 and poetry.share == pytest.approx(2 / 3)
    assert (poetry.lengths["query"].min, poetry.lengths["query"].mean,
            poetry.lengths["query"].max) == (10, 20, 30)
    assert total.count == 3 and total.lengths["answer"].mean == pytest.approx(1060 / 3)
    assert rows[0].name == "Poetry"


def test_taxonomy():
    tax = load_taxonomy()
    assert len(tax.categories) == 7
    assert sum(c.paper_count for c in tax.categories) == 1665
    assert len(tax.genres) >= 46
    assert tax.resolve("相声") == ("funny", "crosstalk")
    assert tax.resolve("Science fiction") == ("novel", "scifi")
    assert tax.resolve("诗歌") == ("poetry", None)
    assert tax.resolve("nonsense") == (None, None)
    assert len({g.key for g in tax.genres}) == len(tax.genres)
