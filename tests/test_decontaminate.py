"""N-gram decontamination against eval prompts: the index, the CLI report, and the check inside
`mix build` and `data publish` (a text quoting an Arena-Hard creative prompt is flagged and
dropped with --exclude-contaminated)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from coig_writer.cli import app
from coig_writer.dataset.decontaminate import EvalIndex, NgramConfig, decontaminate
from coig_writer.evaluate.benchmarks import ensure_wheel, get_benchmark
from coig_writer.records import EvalPrompt, Triplet
from coig_writer.store import Store

ZH = EvalPrompt(id="p-zh", lang="zh", prompt="请以“城市里的最后一盏路灯”为题，写一篇不少于八百字的散文。",
                set_name="mine")
EN = EvalPrompt(id="p-en", lang="en", set_name="mine",
                prompt="Write a short story about a lighthouse keeper who finds a message in a bottle.")


def test_index_flags_shared_ngrams_with_span_and_respects_sizes() -> None:
    idx = EvalIndex([ZH, EN])
    items = [
        ("zh", {"query": "写一篇散文", "answer": "序言。城市里的，最后一盏路灯为题写一篇！后记"}),
        ("en", {"query": "Story time", "answer": "Intro: write a SHORT story about a lighthouse "
                                                  "keeper who finds gold. End."}),
        ("zh-short", {"answer": "城市里的最后一盏路灯为题"}),  # 12 Chinese characters
        ("en-short", {"answer": "about a lighthouse keeper who finds a"}),  # 7 words
        ("clean", {"query": "写一首诗", "answer": "春眠不觉晓，处处闻啼鸟。"}),
    ]
    flags = {f.item_id: f for f in idx.scan(items)}
    assert set(flags) == {"zh", "en"}
    z = flags["zh"]
    assert (z.field, z.set_name, z.prompt_id, z.ngrams) == ("answer", "mine", "p-zh", 3)
    assert z.span == "城市里的,最后一盏路灯为题写一篇"  # NFKC turns the full-width comma into ","
    e = flags["en"]
    assert e.prompt_id == "p-en" and e.span == "write a short story about a lighthouse keeper who finds"
    assert e.ngrams == 3
    small = EvalIndex([ZH, EN], NgramConfig(zh_n=12, en_n=7))
    assert {f.item_id for f in small.scan(items)} == {"zh", "en", "zh-short", "en-short"}
    short = EvalPrompt(id="p-short", lang="en", set_name="mine", prompt="Write a haiku about autumn rain.")
    got = list(EvalIndex([short]).scan([("h", {"answer": "Task: write a haiku about autumn rain!"}),
                                        ("n", {"answer": "write a haiku about autumn"})]))
    assert [(f.item_id, f.span) for f in got] == [("h", "write a haiku about autumn rain")]
    with pytest.raises(ValueError, match=">= 1"):
        NgramConfig(zh_n=0)


def _store_with_arena_quote(path: Path) -> str:
    ensure_wheel()
    arena = next(p for p in get_benchmark("arena-hard-creative").load() if p.text_lang == "en"
                 and len(p.prompt.split()) >= 30)
    with Store(path) as store:
        for i in range(4):
            store.construct.put_triplet(Triplet(
                id=f"t{i}", query=f"写一篇关于第{i}个季节的散文", thought="先想结构。",
                answer="春天来了，燕子回来了，柳树发芽了。" * (i + 1), status="accepted",
                category="prose", genre="essay"))
        store.construct.put_triplet(Triplet(id="leak", query="Write a story.", thought="Plan the scenes.",
                                  answer="Notes I found: " + arena.prompt + " -- and so it began.",
                                  status="accepted", category="novel", genre="scifi"))
    return arena.id


def test_arena_hard_prompt_in_a_text_is_flagged_and_excluded_from_mix_and_publish(tmp_path) -> None:
    db = tmp_path / "s.sqlite"
    arena_id = _store_with_arena_quote(db)
    run = CliRunner()
    r = run.invoke(app, ["data", "decontaminate", "--db", str(db), "--decontam-set",
                         "arena-hard-creative", "--decontam-set", "bundled-zh", "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output[r.output.index("{"):])
    assert rep["checked"] == 5 and rep["contaminated"] == 1
    assert rep["sets"] == {"arena-hard-creative": 250, "bundled-zh": 14}
    (flag,) = rep["flags"]
    assert (flag["item_id"], flag["field"], flag["set_name"], flag["prompt_id"]) == (
        "leak", "answer", "arena-hard-creative", arena_id)
    r = run.invoke(app, ["data", "decontaminate", "--db", str(db), "--decontam-set",
                         "arena-hard-creative"])
    assert r.exit_code == 0 and "1 contaminated triplet(s)" in r.output and arena_id in r.output

    base = ["mix", "build", "--db", str(db), "--decontam-set", "arena-hard-creative"]
    r = run.invoke(app, [*base, "--out", str(tmp_path / "kept")])
    assert r.exit_code == 0 and "--exclude-contaminated drops them" in r.output, r.output
    kept = json.loads((tmp_path / "kept" / "manifest.json").read_text("utf-8"))
    assert "leak" in {s["id"] for s in kept["samples"]}
    r = run.invoke(app, [*base, "--exclude-contaminated", "--out", str(tmp_path / "clean")])
    assert r.exit_code == 0, r.output
    man = json.loads((tmp_path / "clean" / "manifest.json").read_text("utf-8"))
    assert {s["id"] for s in man["samples"]} == {"t0", "t1", "t2", "t3"}
    assert man["decontamination"]["excluded"] == 1
    assert man["decontamination"]["by_set"] == {"arena-hard-creative": 1}

    r = run.invoke(app, ["data", "export", str(tmp_path / "x.jsonl"), "--db", str(db),
                         "--exclude-contaminated", "--decontam-set", "arena-hard-creative"])
    assert r.exit_code == 0 and "wrote 4 triplets" in r.output, r.output
    r = run.invoke(app, ["data", "publish", str(tmp_path / "pub"), "--db", str(db),
                         "--exclude-contaminated", "--decontam-set", "arena-hard-creative"])
    assert r.exit_code == 0 and "wrote 4 triplets" in r.output, r.output
    card = (tmp_path / "pub" / "README.md").read_text("utf-8")
    assert "## Decontamination against evaluation prompts" in card
    assert "`arena-hard-creative` (250 prompts)" in card and "1 of 5 triplets" in card
    assert "they were excluded, 1 in all" in card


def test_missing_prompt_file_is_reported_not_fatal(tmp_path) -> None:
    rep = decontaminate([("a", {"answer": "x"})], ["bundled-en", str(tmp_path / "nope.jsonl")])
    assert rep.sets == {"bundled-en": 14} and "no such prompt set" in rep.unavailable[
        str(tmp_path / "nope.jsonl")]


def test_default_check_never_waits_on_a_benchmark_download(tmp_path, monkeypatch) -> None:
    from coig_writer.dataset.decontaminate import load_eval_sets

    monkeypatch.setenv("COIG_WRITER_CACHE", str(tmp_path / "empty-cache"))
    prompts, counts, missing = load_eval_sets(["bundled-zh", "writingbench"], download=False)
    assert counts == {"bundled-zh": 14} and len(prompts) == 14
    assert "not downloaded yet" in missing["writingbench"] and "fetch-benchmarks" in missing[
        "writingbench"]
