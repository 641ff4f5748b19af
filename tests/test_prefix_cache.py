"""Prefix-shared prompt layout, cached prompt tokens as servers report them, prefix affinity,
and the legacy layout's cache keys unchanged."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

from coig_writer.cli import app
from coig_writer.construct.config import ConstructConfig
from coig_writer.construct.pipeline import ConstructPipeline
from coig_writer.construct.runner import run_local
from coig_writer.genres import load_taxonomy
from coig_writer.llm import ChatRequest
from coig_writer.llm.accounting import Accounting
from coig_writer.llm.base import ChatResponse
from coig_writer.llm.endpoints import Endpoint, Router
from coig_writer.llm.openai_compat import OpenAICompatBackend
from coig_writer.prompts import compose, load_template
from coig_writer.records import Provenance, SourceText
from coig_writer.store import Store

from .servers import FaultServer, _Server, completion, stage_of

TEXT = "床前明月光，疑是地上霜。举头望明月，低头思故乡。"
SCREEN = {"quality": 9, "creativity": 9, "category": "poetry", "genre": "classical_poem",
          "reason": "好"}
SCORE = {d: 9 for d in ("prompt_quality", "prompt_creativity", "reasoning_quality",
                        "reasoning_creativity", "text_quality", "text_creativity")} | {"comment": "无"}
PROMPT = "请写一首思乡的五言绝句，要求意象清冷，情感含蓄。"
REASONING = ("用户想要一首思乡的五言绝句。首先我需要确定意象：床前的月光像地上的霜，清冷而安静。"
             "然后安排结构：前两句写所见，后两句写动作与情感，举头望月、低头思乡，形成对照。最后检查用字是否平易自然，"
             "情感是否含蓄而深远，收束落在故乡二字。")


class StageStub(_Server):
    """Answers each construction stage by its stage tag; reports cached prompt tokens when
    `cached` is given."""

    def __init__(self, cached: int | None = 7, coherent: bool = True):
        self.cached, self.coherent = cached, coherent
        super().__init__(self._answer)

    def _answer(self, body: dict) -> tuple[int, dict, float]:
        text = {"screen": json.dumps(SCREEN), "score": json.dumps(SCORE),
                "validate": json.dumps({"coherent": self.coherent, "issues": [] if self.coherent
                                        else ["思考与指令不符"], "suggestion": ""}),
                "reconstruct_prompt": PROMPT, "reasoning": REASONING}[stage_of(body)]
        out = completion(text)
        out["usage"] = {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}
        if self.cached is not None:
            out["usage"]["prompt_tokens_details"] = {"cached_tokens": self.cached}
        return 200, out, 0.0


def _store_with_text(path) -> Store:
    store = Store(path)
    store.corpus.add_source(SourceText(id="t1", text=TEXT, provenance=Provenance(title="静夜思")))
    return store


def _run(store: Store, url: str, redo: bool = False, **cfg) -> ConstructPipeline:
    be = OpenAICompatBackend(url, "stub", max_retries=0)
    pipe = ConstructPipeline(store, be, ConstructConfig(**cfg))

    async def go():
        try:
            return await run_local(pipe, concurrency=1, redo=redo)
        finally:
            await be.aclose()

    pipe.summary = asyncio.run(go())
    return pipe


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_call_of_an_item_shares_its_prefix_byte_for_byte(tmp_path, lang):
    """One refinement round and a reviewer's refinement: all calls begin with the same system
    message and source block; reasoning adds the prompt; validate and score share prompt and
    reasoning too. The stub writes the same prompt and reasoning every round, so the judging
    stages (seed kept across rounds) replay round 1's verdict from the cache."""
    with StageStub(coherent=False) as srv, _store_with_text(tmp_path / "s.sqlite") as store:
        pipe = _run(store, srv.base_url, lang=lang, max_rounds=1)
        trip = next(store.construct.iter_triplets())

        async def refine():
            try:
                await pipe.refine(trip, "多写意象", ["reasoning"], run_id="r", round_base=2)
            finally:
                await pipe.llm.aclose()

        asyncio.run(refine())
        calls = [(b["messages"], json.dumps(b.get("response_format"))) for b in srv.requests]
    # screen; round 1; round 2's prompt and reasoning; the two refinement rounds' reasoning
    assert len(calls) == 1 + 4 + 2 + 2
    prefix = load_template("shared/prefix", lang)
    system, user = compose(prefix, load_template("shared/screen", lang), title="静夜思",
                           article=TEXT, genres=load_taxonomy().listing(lang))
    source = user["content"].split("\n\n")[0]
    assert "sketch" in system["content"]  # the genre table: in every call, cached
    assert source.startswith(("文章标题：静夜思", "Title: 静夜思")) and TEXT in source
    for msgs, _ in calls:
        assert [m["role"] for m in msgs[:2]] == ["system", "user"]
        assert msgs[0]["content"] == system["content"]
        assert msgs[1]["content"].startswith(source + "\n\n")
    prompt_block = dict(prefix.blocks)["prompt"].replace("$prompt", PROMPT).strip()
    reasoning_block = dict(prefix.blocks)["reasoning"].replace("$reasoning", REASONING).strip()
    later = [m[1]["content"] for m, fmt in calls if "coherent" in fmt or "prompt_quality" in fmt]
    assert len(later) == 2  # validate and score once: the later rounds' are the same calls
    for content in later:
        assert content.startswith(f"{source}\n\n{prompt_block}\n\n{reasoning_block}\n\n")
    reasoning_calls = [m[1]["content"] for m, fmt in calls
                       if fmt == "null" and prompt_block in m[1]["content"]]
    assert len(reasoning_calls) == 4
    assert all(c.startswith(f"{source}\n\n{prompt_block}\n\n") for c in reasoning_calls)


def test_cached_tokens_from_a_server_that_reports_them_and_one_that_does_not(tmp_path):
    with StageStub(cached=7) as srv, _store_with_text(tmp_path / "a.sqlite") as store:
        summary = _run(store, srv.base_url, max_rounds=0).summary
        usages = [json.loads(u) for (u,) in store.db.execute("SELECT usage FROM llm_cache")]
    assert len(usages) == 5 and all(u["prompt_tokens_details"]["cached_tokens"] == 7
                                    for u in usages)  # kept per call in the store
    assert summary.totals["cached_prompt_tokens"] == 35 and summary.totals["prompt_tokens"] == 50
    assert summary.totals["cached_share"] == 0.7
    assert {r["stage"]: r["cached_prompt_tokens"] for r in summary.accounting}["score"] == 7

    with StageStub(cached=None) as srv, _store_with_text(tmp_path / "b.sqlite") as store:
        summary = _run(store, srv.base_url, max_rounds=0).summary
    assert summary.totals["prompt_tokens"] == 50
    assert summary.totals["cached_prompt_tokens"] is None  # not reported is not zero
    assert summary.totals["cached_share"] is None
    assert ChatResponse("x", usage={"prompt_tokens": 3}).cached_prompt_tokens is None
    assert ChatResponse("x", usage={"prompt_tokens_details": {"cached_tokens": 0}}) \
        .cached_prompt_tokens == 0


def test_accounting_merges_worker_rows_with_and_without_cached_figures():
    a, b = Accounting(), Accounting()
    a.record("score", "m", ChatResponse("x", usage={"prompt_tokens": 10, "prompt_tokens_details":
                                                    {"cached_tokens": 4}}))
    b.record("score", "m", ChatResponse("x", usage={"prompt_tokens": 10}))
    a.merge(b.summary())
    row = a.summary()[0]
    assert row["prompt_tokens"] == 20 and row["cached_prompt_tokens"] == 4
    assert row["cached_reported_calls"] == 1
    c = Accounting()
    c.merge(b.summary())
    assert c.totals()["cached_prompt_tokens"] is None


def test_cli_run_and_status_show_cached_tokens_and_print_json(tmp_path):
    runner = CliRunner()
    db = str(tmp_path / "c.sqlite")
    _store_with_text(db).close()
    with StageStub(cached=7) as srv:
        r = runner.invoke(app, ["construct", "run", "--db", db, "--backend", "openai",
                                "--base-url", srv.base_url, "--model", "stub", "--max-rounds",
                                "0", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["totals"]["cached_prompt_tokens"] == 35 and data["statuses"] == {"accepted": 1}
    r = runner.invoke(app, ["construct", "status", "--db", db, "--json"])
    status = json.loads(r.stdout)
    assert status["texts"] == {"ok": 1} and status["triplets"] == {"accepted": 1}
    assert status["runs"][-1]["summary"]["totals"]["cached_share"] == 0.7
    r = runner.invoke(app, ["construct", "status", "--db", db], env={"COLUMNS": "160"})
    assert r.exit_code == 0, r.output
    assert "{" not in r.stdout and "1 ok texts" in r.stdout
    assert "35 (70%)" in r.stdout and "cache served 70%" in r.stdout
    r = runner.invoke(app, ["data", "stats", "--db", db, "--json"])
    assert json.loads(r.stdout)["total"]["count"] == 1


def test_legacy_layout_keeps_its_cache_keys_and_replays(tmp_path):
    """Keys pinned from the code before the shared layout existed: old stores keep replaying."""
    script = [("ok", json.dumps(SCREEN)), ("ok", PROMPT), ("ok", REASONING),
              ("ok", json.dumps({"coherent": True, "issues": [], "suggestion": ""})),
              ("ok", json.dumps(SCORE))]
    pinned = {
        "screen": "5fa6a9d62cebc9b495748818e99a8ac22b622958589ba770617ed36dec292ae9",
        "reconstruct_prompt": "91479bd23d52aacfb59aa333106cbc3c8681ed77c6ddfbb92edcf3dba4c580e5",
        "reasoning": "5d3eea2405ab6d78ee3814718d87d0b6a42b615c1eb8b65460dcdcdcafda3cc7",
        "validate": "a15880f8f1b4c7d94e6431fbdc1041157545053d6ce97efed3c79ca7dba8aa49",
        "score": "3f347378d1a9b80a61f3053a135893686a81ff747ff7f7ade18df867e8b0dc4d"}
    with FaultServer(script) as srv, _store_with_text(tmp_path / "l.sqlite") as store:
        # scoring stages ask for score probabilities by default: new requests, new keys;
        # without them (top_logprobs 0) every request is the one an old store holds
        _run(store, srv.base_url, max_rounds=0, layout="legacy", top_logprobs=0)
        keys = dict(store.db.execute("SELECT stage, key FROM llm_cache"))
        assert keys == pinned
        trip = next(store.construct.iter_triplets())
        store.construct.put_triplet(trip.model_copy(update={"status": "rejected"}))
        sent = len(srv.requests)
        again = ConstructPipeline(store, OpenAICompatBackend(srv.base_url, "stub"),
                                  ConstructConfig(max_rounds=0, layout="legacy", top_logprobs=0))
        summary = asyncio.run(run_local(again, redo=True))
        assert summary.cache_hits == 5 and summary.llm_calls == 0 and len(srv.requests) == sent
        shared = _run(store, srv.base_url, redo=True, max_rounds=0)  # the new layout asks anew
    assert "construct_prefix" in shared.template_hashes
    assert len(srv.requests) > sent  # new keys: nothing replayed across layouts


def test_router_keeps_an_item_on_its_endpoint_and_falls_back_when_busy_or_down():
    a, b = Endpoint(url="http://a/v1", max_concurrency=2), Endpoint(url="http://b/v1")
    router = Router([a, b], max_failures=1)

    async def go():
        await router.release(await router.acquire(affinity="i1"), ok=True)  # a (tie: first)
        hold1 = await router.acquire(affinity="i2")  # a: 1 in flight, b: 0
        again = await router.acquire(affinity="i1")
        assert again is a  # busier by one call, still where its prefix is cached
        await router.release(again, ok=True)
        hold2 = await router.acquire(affinity="i2")
        assert hold2 is a  # a is full now (2 in flight)
        moved = await router.acquire(affinity="i1")
        assert moved is b  # full: least loaded instead, and the item now lives there
        await router.release(moved, ok=True)
        await router.release(hold1, ok=True)
        await router.release(hold2, ok=True)
        back = await router.acquire(affinity="i1")
        assert back is b
        await router.release(back, ok=False)  # b goes down (max_failures=1)
        down = await router.acquire(affinity="i1")
        assert down is a
        await router.release(down, ok=True)

    asyncio.run(go())


@pytest.mark.slow
def test_embedded_engine_reports_cached_prompt_tokens(small_model):
    """The real embedded llama.cpp: a second call that shares a long prefix is served from the
    slot's cache, and the figure arrives as usage.prompt_tokens_details.cached_tokens."""
    from coig_writer.llm.engine import LocalBackend

    be = LocalBackend(small_model, n_ctx=2048, n_parallel=1)
    shared = [{"role": "system", "content": "你是标注专家。"},
              {"role": "user", "content": TEXT * 12 + "\n\n任务一：用一个词概括。"}]
    second = [shared[0], {"role": "user", "content": TEXT * 12 + "\n\n任务二：给出标题。"}]

    async def go():
        try:
            r1 = await be.chat(ChatRequest.build(shared, max_tokens=4, item="t"))
            r2 = await be.chat(ChatRequest.build(second, max_tokens=4, item="t"))
            return r1, r2
        finally:
            await be.aclose()

    r1, r2 = asyncio.run(go())
    assert r1.cached_prompt_tokens is not None and r2.cached_prompt_tokens is not None
    assert r2.cached_prompt_tokens >= r2.prompt_tokens // 2 > 0
