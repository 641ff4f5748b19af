"""`data publish`: a folder `datasets.load_dataset` loads, with a card carrying the store's counts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from coig_writer.records import Provenance, Scores, SourceText, Triplet
from coig_writer.store import Store

datasets = pytest.importorskip("datasets")

GENRES = [("letter", "communication"), ("letter", "communication"), ("speech", "communication"),
          ("scifi", "novel"), ("fantasy", "novel")]


def _fill(store: Store) -> None:
    for i, (genre, cat) in enumerate(GENRES):
        prov = Provenance(source_url=f"https://example.org/t{i}", date=dt.date(2023, 1, 1 + i),
                          license="cc-by-4.0")
        store.corpus.add_source(SourceText(id=f"s{i}", text=f"正文{i}" * 20, provenance=prov))
        store.construct.put_triplet(Triplet(
            id=f"t{i}", query=f"写一篇作品{i}", thought="先理解题意，再定结构。" * (i + 1),
            answer=f"正文{i}" * 20, source_id=f"s{i}", genre=genre, category=cat,
            status="rejected" if i == 4 else "accepted", provenance=prov, model="qwen-test",
            scores=Scores(prompt_quality=8, prompt_creativity=8, reasoning_quality=9,
                          reasoning_creativity=8, text_quality=9, text_creativity=8),
            templates={"reasoning": "ab" * 32}))
    store.corpus.add_source(SourceText(id="dup", text="重复", status="filtered",
                                filter_reason="near_duplicate of s0 (jaccard 0.91)"))
    store.corpus.add_source(SourceText(id="old", text="旧文", status="filtered",
                                filter_reason="before_cutoff: 2020-01-01 <= 2022-10-31"))
    store.usefulness.put_usefulness("t0", 0, "scorer-x", "f" * 64, "s", "letter",
                         {"triplet_id": "t0", "genre": "letter", "scorer": "scorer-x",
                          "template_hash": "f" * 64, "nll_prompt": 1.2, "nll_own": 1.0,
                          "nll_control": 1.1, "gain": 0.2, "gain_vs_control": 0.1})
    from coig_writer.construct.config import ConstructConfig

    store.runs.start_run("construct", {"config": ConstructConfig(min_sum=48).model_dump(),
                                  "model": "qwen-test"})
    # reviews: t0 accepted by both, t1 disputed, t2 one review only (pending)
    for who in ("ann", "bob"):
        store.auth.add_user(who, "x", "reviewer")
        for i in range(3):
            store.review.assign(f"t{i}", who)
    store.review.add_review("t0", "ann", "accept", "", 0)
    store.review.add_review("t0", "bob", "edit", "", 0)
    store.review.add_review("t1", "ann", "accept", "", 0)
    store.review.add_review("t1", "bob", "reject", "flat", 0)
    store.review.add_review("t2", "ann", "accept", "", 0)


def _load(out: Path, tmp_path: Path):
    return datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf-cache"))["train"]


def test_publish_loads_with_datasets_and_card_has_store_counts(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from coig_writer.cli import app

    db = tmp_path / "s.sqlite"
    with Store(db) as store:
        _fill(store)
    out = tmp_path / "release"
    r = CliRunner().invoke(app, ["data", "publish", str(out), "--db", str(db),
                                 "--shard-rows", "3"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (out / "data").iterdir()) == [
        "train-00000-of-00002.parquet", "train-00001-of-00002.parquet"]
    ds = _load(out, tmp_path)
    assert ds.num_rows == 4  # the accepted ones
    assert {"id", "query", "thought", "answer", "category", "genre", "scores", "usefulness",
            "source_url", "date", "license", "review_status"} <= set(ds.column_names)
    row = {r["id"]: r for r in ds}["t0"]
    assert row["usefulness"]["gain"] == pytest.approx(0.2)
    assert row["scores"]["reasoning_quality"] == 9 and row["review_status"] == "accepted"
    assert {r["id"]: r for r in ds}["t3"]["usefulness"] is None

    card = (out / "README.md").read_text("utf-8")
    meta = yaml.safe_load(card.split("---")[1])
    assert meta["license"] == "cc-by-4.0" and meta["language"] == ["zh"]
    assert meta["size_categories"] == ["n<1K"] and meta["task_categories"] == ["text-generation"]
    assert meta["configs"][0]["data_files"][0]["path"] == "data/train-*.parquet"
    for line in ("| `letter` | Letter / 书信 | 2 | 50.0% |", "| `speech` | Speech / 演讲稿 | 1 | 25.0% |",
                 "| `communication` | Communication Writing / 交流写作 | 3 | 75.0% |",
                 "| Total |  | 4 | 100% |", "| near_duplicate | 1 |", "| before_cutoff | 1 |",
                 "| cc-by-4.0 | 4 |"):
        assert line in card, line
    assert "4 of 5 triplets accepted (80.0%)" in card
    assert "pipeline accepted 4, reviewers accepted 1, both 1" in card
    assert "each item needs 2 assigned reviewers" in card
    assert "7 texts ingested, 5 kept, 2 filtered" in card
    assert "`qwen-test` (4)" in card and "`scorer-x` with chat template `ffff" in card
    assert "| reasoning | `abababababababab` | 4 |" in card
    assert "| screen_threshold | 8 |" in card and "| min_sum | 48 |" in card
    assert "Known limitations" in card and "Length statistics" in card
    assert "| fails: `reasoning_copies_text` | 0 |" in card
    assert "| fails: `form_mismatches_genre` (review) |" in card
    assert "| shows: interpretation_planning | 4 |" in card  # "理解题意" in every reasoning


def test_publish_reviewed_keeps_only_review_accepted(tmp_path: Path) -> None:
    from coig_writer.dataset.publish import PublishOptions, publish

    with Store(tmp_path / "s.sqlite") as store:
        _fill(store)
        rep = publish(store, tmp_path / "rev", PublishOptions(reviewed=True))
        assert rep.rows == 1
        with pytest.raises(ValueError, match="nothing to publish"):
            publish(store, tmp_path / "none", PublishOptions(reviewed=True, status="rejected"))
    ds = _load(tmp_path / "rev", tmp_path)
    assert ds["id"] == ["t0"]
    card = (tmp_path / "rev" / "README.md").read_text("utf-8")
    assert "| Total |  | 1 | 100% |" in card and "accepted by human review" in card
