"""Reasoning search: segments, a stub generator whose even seeds paste the text (the checks must
throw those out), the tiny random Qwen2 as scorer, steps stored, versions written, a rerun that
asks nothing again, kill -9 and resume through the CLI, and the embedded 0.5B as generator."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from coig_writer.construct.config import ConstructConfig
from coig_writer.construct.search import ReasoningSearch, replace_segment, run_search, segments
from coig_writer.llm import make_backend
from coig_writer.llm.scoring import CachedScorer, TransformersScorer
from coig_writer.records import Triplet
from coig_writer.store import Store

from .servers import _Server, completion

pytest.importorskip("transformers")
POEM = "慈母手中线，游子身上衣。临行密密缝，意恐迟迟归。谁言寸草心，报得三春晖。"
PROMPT = "写一首六句的五言古诗，歌颂母爱：从母亲为远行的孩子缝衣写起，结尾用比喻说明子女难以报答母恩。"
REASONING = ("首先理解题意：主题是母爱，形式是六句五言，我要先确定立意。\n"
             "结构上，我打算前两句用母亲手中的针线和孩子身上的衣服两个意象对举。\n"
             "中间两句写出发前母亲缝得细密，担心孩子很久才回来，情感要克制。\n"
             "最后两句用小草和春天阳光作比，语言朴素，押平声韵，最后再检查修改。")
CONFIG = {"min_reasoning_chars": 20, "reasoning_checks": {"max_copy_run": 10},
          "search": {"candidates": 2, "max_steps": 3, "max_tokens": 120}}


def stub_answer(body: dict) -> str:
    """Even seeds paste the poem (fails the copy check), odd seeds plan in the first person."""
    user = body["messages"][-1]["content"]
    assert "【" in user, "not a search request"
    if body.get("seed", 0) % 2 == 0:
        return "我打算直接写：" + POEM
    return f"接下来我要写母亲在灯下为远行的孩子缝衣，针脚细密，担心他迟迟不归（方案{body['seed']}）。"


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from coig_writer.train.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


def _store(db: Path) -> None:
    with Store(db) as s:
        s.construct.put_triplet(Triplet(id="t1", query=PROMPT, thought=REASONING, answer=POEM,
                              status="accepted", genre="classical_shi", category="poetry"))


def test_segments_cover_the_reasoning_and_replace_keeps_layout() -> None:
    segs = segments(REASONING, 20)
    assert "".join(segs) == REASONING and len(segs) == 4
    one_line = REASONING.replace("\n", "")
    assert "".join(segments(one_line, 30)) == one_line and len(segments(one_line, 30)) >= 3
    new = replace_segment(segs, 1, "  新的第二段。 ")
    assert new[1] == "新的第二段。\n" and "".join(new).count("\n") == 3


def test_search_keeps_only_checked_candidates_stores_steps_and_reruns_free(tiny_dir, tmp_path):
    db = tmp_path / "s.sqlite"
    _store(db)
    cfg = ConstructConfig.model_validate(CONFIG)
    with _Server(lambda body: (200, completion(stub_answer(body)), 0.0)) as stub, Store(db) as s:

        async def go():
            llm = make_backend("openai", model="stub-gen", base_url=stub.base_url)
            scorer = CachedScorer(TransformersScorer(tiny_dir, batch_size=4), s)
            search = ReasoningSearch(s, llm, scorer, cfg)
            try:
                return await run_search(s, search), search, scorer
            finally:
                await search.llm.aclose()

        summary, search, scorer = asyncio.run(go())
        assert summary.searched == 1
        steps = s.search.steps("t1")
        out = summary.outcomes[0]
        assert len(steps) == 2 * out["steps"] and out["steps"] >= 1
        pasted = [r for r in steps if r["candidate"].startswith("我打算直接写")]
        assert pasted and all(r["problems"] and r["nll"] is None and not r["kept"] for r in pasted)
        assert any("reasoning_copies_text" in p for r in pasted for p in r["problems"])
        kept = [r for r in steps if r["kept"]]
        assert all(not r["problems"] and r["nll"] is not None for r in kept)
        assert out["kept"] == len(kept) and out["nll_after"] <= out["nll_before"]
        t = s.construct.get_triplet("t1")
        if kept:  # the improved reasoning is a reviewable version by the generator
            (v,) = s.review.versions("t1")
            assert v["editor"] == "model:stub-gen" and v["diff"].startswith(
                "# reasoning search by model:stub-gen: usefulness gain")
            assert t.thought == out["reasoning"] != REASONING and "【" not in t.thought
            assert s.usefulness.usefulness("t1")["gain"] == pytest.approx(out["gain_after"])
            assert search.problems(t, t.thought) == []
        else:
            assert s.review.versions("t1") == [] and t.thought == REASONING
        calls, scored = len(stub.requests), scorer.misses

        again = asyncio.run(go())[0]
        assert again.searched == 0 and again.skipped == 1 and len(stub.requests) == calls
        assert len(s.search.steps("t1")) == len(steps) and scored > 0


def test_kill_9_and_resume_asks_and_scores_nothing_twice(tiny_dir, tmp_path):
    db = tmp_path / "s.sqlite"
    with Store(db) as s:
        for i in range(3):
            s.construct.put_triplet(Triplet(id=f"t{i}", query=PROMPT, thought=REASONING, answer=POEM,
                                  status="accepted", genre="classical_shi"))
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG), "utf-8")
    env = {k: v for k, v in os.environ.items() if k != "COIG_WRITER_DB"}
    with _Server(lambda body: (200, completion(stub_answer(body)), 0.3)) as stub:
        args = [sys.executable, "-m", "coig_writer.cli", "construct", "search-reasoning", "--db",
                str(db), "--backend", "openai", "--base-url", stub.base_url, "--model", "stub-gen",
                "--scorer", "transformers", "--scorer-model", str(tiny_dir), "--config", str(cfg)]
        first = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True)
        deadline = time.time() + 120
        while len(stub.requests) < 5 and time.time() < deadline and first.poll() is None:
            time.sleep(0.05)
        assert first.poll() is None, "finished before the kill: " + first.stdout.read()
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        before = len(stub.requests)
        second = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
        assert second.returncode == 0, second.stdout + second.stderr
        bodies = [json.dumps(b, sort_keys=True, ensure_ascii=False) for b in stub.requests]
    assert len(bodies) > before
    repeated = [b for b, n in Counter(bodies).items() if n > 1]
    assert len(repeated) <= 2  # only the K requests in flight at the kill may be sent again
    out = second.stdout
    assert "searched" in out and re.search(r"scorer calls \d+ \(cache hits [1-9]", out), out
    with Store(db) as s:
        repo = s.search
        assert {r["triplet_id"] for r in repo.results()} == {"t0", "t1", "t2"}
        assert all(r["status"] == "done" for r in repo.results())
        for i in range(3):  # one row per (step, candidate), at most one new version each
            steps = repo.steps(f"t{i}")
            assert len({(r["step"], r["cand"]) for r in steps}) == len(steps)
            assert len(s.review.versions(f"t{i}")) <= 1


@pytest.mark.slow
def test_search_with_the_embedded_model(small_model, tiny_dir, store):
    store.construct.put_triplet(Triplet(id="t1", query=PROMPT, thought=REASONING, answer=POEM,
                              status="accepted", genre="classical_shi"))
    cfg = ConstructConfig.model_validate({**CONFIG, "search": {"candidates": 2, "max_steps": 1,
                                                               "max_tokens": 120}})

    async def go():
        llm = make_backend("local", model=str(small_model), n_ctx=4096)
        search = ReasoningSearch(store, llm, CachedScorer(TransformersScorer(tiny_dir), store),
                                 cfg)
        try:
            return await run_search(store, search), search
        finally:
            await search.llm.aclose()

    summary, search = asyncio.run(go())
    steps = store.search.steps("t1")
    assert summary.searched == 1 and len(steps) == 2
    assert all(r["candidate"] or r["problems"] == ["no usable answer"] for r in steps)
    for r in steps:  # whatever the small model wrote, nothing failing the checks is kept
        assert not r["kept"] or (not r["problems"] and r["nll"] is not None)
    t = store.construct.get_triplet("t1")
    assert search.problems(t, t.thought) == [] or t.thought == REASONING


def test_search_stage_after_construct_run(tiny_dir, tmp_path):
    from typer.testing import CliRunner

    from coig_writer.cli import app

    from .conftest import SAMPLE, fast_config
    from .review_fixtures import stage_answer

    db = tmp_path / "s.sqlite"
    cfg = tmp_path / "cfg.yaml"
    search = {"enabled": True, "candidates": 2, "max_steps": 1, "scorer": "transformers",
              "scorer_model": str(tiny_dir)}
    cfg.write_text(yaml.safe_dump({**fast_config(screen_threshold=0).model_dump(),
                                   "search": search}), "utf-8")
    corpus = tmp_path / "one.jsonl"
    corpus.write_text(SAMPLE.read_text("utf-8").splitlines(keepends=True)[0], "utf-8")

    def answer(body: dict) -> str:
        return stub_answer(body) if "【" in body["messages"][-1]["content"] else stage_answer(body)

    run = CliRunner()
    with _Server(lambda body: (200, completion(answer(body)), 0.0)) as stub:
        assert run.invoke(app, ["construct", "ingest", str(corpus), "--db", str(db)]).exit_code == 0
        r = run.invoke(app, ["construct", "run", "--db", str(db), "--backend", "openai",
                             "--base-url", stub.base_url, "--model", "stub", "--config", str(cfg)])
    assert r.exit_code == 0, r.output
    assert "reasoning search: 1 searched" in r.output
    with Store(db) as s:
        (res,) = s.search.results()
        assert res["status"] == "done" and res["steps"] == 1
        assert len(s.search.steps(res["triplet_id"])) == 2
