"""Generation integrity on real HTTP against a loopback stub (for what no small model does on
demand): truncation, reasoning_content, schemas, accounting, unusable cached answers, batches."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from coig_writer.construct.pipeline import ConstructPipeline, triplet_id
from coig_writer.construct.runner import run_batch_wave, run_local
from coig_writer.evaluate.generate import generate
from coig_writer.llm import (
    Accounting,
    CachedBackend,
    ChatRequest,
    CompletionError,
    complete_json,
    detect_loop,
)
from coig_writer.llm.openai_compat import OpenAICompatBackend
from coig_writer.records import EvalPrompt, SourceText
from coig_writer.store import Store

from .review_fixtures import GOLD_TEXT, stage_answer
from .servers import STAGE_HEADER, _Server, stage_of

TEXT = GOLD_TEXT  # a bundled text: the stub answers it with its hand-written triplet


def reply(content: str, finish: str = "stop", reasoning: str | None = None,
          prompt_tokens: int = 11, completion_tokens: int = 7) -> dict:
    msg = {"role": "assistant", "content": content}
    if reasoning is not None:
        msg["reasoning_content"] = reasoning
    return {"id": "x", "object": "chat.completion", "model": "stub",
            "choices": [{"index": 0, "finish_reason": finish, "message": msg}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


def backend(srv: _Server, **kw) -> OpenAICompatBackend:
    return OpenAICompatBackend(srv.base_url, "stub", max_retries=0, backoff_s=0.01, **kw)


def one_text(store: Store) -> SourceText:
    src = SourceText(id="s1", text=TEXT)
    store.corpus.add_source(src)
    return src


def test_truncated_stage_never_reaches_accepted(store):
    """The reasoning stage always stops at max_tokens: retried once with more tokens, then the
    item is left for a human with the reason; nothing truncated is accepted."""
    def handle(body):
        if stage_of(body) == "reasoning":
            return 200, reply("思考过程写到一半", finish="length",
                              completion_tokens=body["max_tokens"]), 0.0
        return 200, reply(stage_answer(body)), 0.0

    src = one_text(store)
    with _Server(handle) as srv:
        pipe = ConstructPipeline(store, backend(srv))
        pipe.config.max_rounds = 0
        summary = asyncio.run(run_local(pipe))
        reasoning_calls = [b["max_tokens"] for b in srv.requests if stage_of(b) == "reasoning"]
    trip = store.construct.get_triplet(triplet_id(src.id))
    assert trip.status == "needs_review"
    assert any("truncated at 2400 tokens" in r for r in trip.reasons), trip.reasons
    assert reasoning_calls == [1200, 2400]  # retried once with twice the tokens
    stage = [s for s in store.construct.stages_for(src.id) if s.stage == "reasoning"][0]
    assert not stage.ok and stage.error_kind == "truncated"
    row = next(r for r in summary.accounting if r["stage"] == "reasoning")
    assert row["truncated"] == 2 and row["unusable"] == 1


def test_reasoning_content_is_kept_apart_and_never_leaks(store):
    def handle(body):
        think = "THINKING-" + stage_of(body)
        if stage_of(body) == "reconstruct_prompt":  # inline <think> block in plain content
            return 200, reply(f"<think>{think}</think>{stage_answer(body)}"), 0.0
        return 200, reply(stage_answer(body), reasoning=think), 0.0

    src = one_text(store)
    with _Server(handle) as srv:
        asyncio.run(run_local(ConstructPipeline(store, backend(srv))))
    trip = store.construct.get_triplet(triplet_id(src.id))
    assert trip.status == "accepted"
    dumped = trip.model_dump_json() + json.dumps([s.output for s in store.construct.stages_for(src.id)],
                                                 ensure_ascii=False)
    assert "THINKING" not in dumped
    thinking = [r[0] for r in store.db.execute("SELECT thinking FROM llm_cache")]
    assert sorted(thinking) == sorted(f"THINKING-{s}" for s in (
        "screen", "reconstruct_prompt", "reasoning", "validate", "score"))


def test_generation_splits_thinking_and_marks_truncation(store):
    prompts = [EvalPrompt(id="p1", lang="zh", prompt="写一首诗"),
               EvalPrompt(id="p2", lang="zh", prompt="写一个故事")]

    def handle(body):
        if "故事" in body["messages"][-1]["content"]:
            return 200, reply("从前有", finish="length", completion_tokens=body["max_tokens"]), 0.0
        return 200, reply("春眠不觉晓。", reasoning="先想意象"), 0.0

    with _Server(handle) as srv:
        out = asyncio.run(generate(store, backend(srv), "m", prompts, max_tokens=100))
        story_tokens = [b["max_tokens"] for b in srv.requests if "故事" in str(b)]
    gens = {g.prompt_id: g for g in store.evaluation.generations()}
    assert gens["p1"].answer == "春眠不觉晓。" and gens["p1"].thinking == "先想意象"
    assert not gens["p1"].truncated
    assert gens["p2"].truncated and gens["p2"].finish_reason == "length"
    assert story_tokens == [100, 200] and out["truncated"] == 1


def test_json_stages_send_schemas_and_fall_back_when_refused(store):
    seen = []

    def handle(body):
        seen.append(body.get("response_format"))
        if (body.get("response_format") or {}).get("type") == "json_schema":
            return 400, {"error": {"message": "response_format json_schema not supported"}}, 0.0
        return 200, reply(stage_answer(body)), 0.0

    one_text(store)
    with _Server(handle) as srv:
        asyncio.run(run_local(ConstructPipeline(store, backend(srv))))
    first = seen[0]
    assert first["type"] == "json_schema"
    schema = first["json_schema"]["schema"]
    assert schema["required"] == ["quality", "creativity", "category", "genre", "reason"]
    assert seen[1] == {"type": "json_object"}  # this server refused schemas: fallback
    assert all(f is None or f["type"] == "json_object" for f in seen[1:])


def test_accounting_matches_server_usage_and_prices(store, tmp_path):
    def handle(body):
        n = len(json.dumps(body["messages"], ensure_ascii=False))
        return 200, reply(stage_answer(body), prompt_tokens=n, completion_tokens=n % 97), 0.0

    one_text(store)
    from coig_writer.llm import load_prices

    prices = tmp_path / "p.yaml"
    prices.write_text("stub: {input: 1.0, output: 2.0}\n")
    acc = Accounting(load_prices(prices))
    with _Server(handle) as srv:
        llm = CachedBackend(backend(srv), store, accounting=acc)
        summary = asyncio.run(run_local(ConstructPipeline(store, llm)))
        sent = [len(json.dumps(b["messages"], ensure_ascii=False)) for b in srv.requests]
    assert summary.totals["calls"] == len(sent) == 5
    assert summary.totals["prompt_tokens"] == sum(sent)
    assert summary.totals["completion_tokens"] == sum(n % 97 for n in sent)
    expect = (sum(sent) * 1.0 + sum(n % 97 for n in sent) * 2.0) / 1e6
    assert summary.totals["cost_usd"] == pytest.approx(expect)
    stored = store.runs.runs()[-1]["summary"]["totals"]
    assert stored["prompt_tokens"] == sum(sent)


def test_rerun_asks_again_after_an_unusable_cached_answer(store):
    answers = iter(['{"winner": "A"}', '{"winner": "A"}', '{"verdict": "A"}'])

    def handle(body):
        return 200, reply(next(answers)), 0.0

    def need_verdict(obj):
        if "verdict" not in obj:
            raise ValueError("missing field 'verdict'")
        return obj["verdict"]

    req = ChatRequest.build([{"role": "user", "content": "judge"}], json_mode=True)
    with _Server(handle) as srv:
        llm = CachedBackend(backend(srv), store)
        with pytest.raises(CompletionError) as e:  # first run: 2 answers, both unusable
            asyncio.run(complete_json(llm, req, need_verdict, retry_message="fix: $error"))
        assert e.value.kind == "invalid" and len(srv.requests) == 2
        assert "missing field 'verdict'" in srv.requests[1]["messages"][-1]["content"]
        value, resps = asyncio.run(complete_json(llm, req, need_verdict,
                                                 retry_message="fix: $error"))
    assert value == "A" and len(srv.requests) == 3  # the rerun asked again instead of replaying
    assert [r.cached for r in resps] == [True, True, False]


def test_loop_detection():
    assert detect_loop("例如可以增加一些细节，" * 10) == "例如可以增加一些细节，"
    assert detect_loop("春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。") is None
    assert detect_loop("哈哈哈哈") is None  # too short to be a decoding loop


def test_two_wave_batch_round_trip_equals_online(tmp_path):
    """Batch waves answered by the same stub give exactly the online run's triplets."""
    texts = [SourceText(id=f"s{i}", text=TEXT + str(i)) for i in range(3)]

    def handle(body):
        return 200, reply(stage_answer(body)), 0.0

    def triplets(store: Store) -> list[dict]:
        return sorted((t.model_dump(exclude={"run_id", "created_at", "updated_at"})
                       for t in store.construct.iter_triplets()), key=lambda t: t["id"])

    with _Server(handle) as srv:
        with Store(tmp_path / "online.sqlite") as online:
            for t in texts:
                online.corpus.add_source(t)
            asyncio.run(run_local(ConstructPipeline(online, backend(srv))))
            expected = triplets(online)

        waves = tmp_path / "waves"
        with Store(tmp_path / "batch.sqlite") as bs:
            for t in texts:
                bs.corpus.add_source(t)
            result_file, n_waves = None, 0
            while True:
                be = backend(srv)
                pipe = ConstructPipeline(bs, CachedBackend(be, bs))
                _, info = run_batch_wave(pipe, waves, batch_in=result_file)
                if info["wave"] is None:
                    break
                n_waves += 1
                result_file = answer_wave(Path(info["wave"]), srv.base_url, bs)
            assert n_waves == 5  # screen, prompt, reasoning, validate, score
            assert triplets(bs) == expected and len(expected) == 3


def answer_wave(wave: Path, base_url: str, store: Store | None = None) -> Path:
    """Play the Batch API: post each line's body, write an output line per request. A batch
    line carries no headers: the stage tag the stub routes on comes from the store's record
    of the request (`store`), as a real batch service would not need it."""
    out = wave.with_suffix(".out.jsonl")
    with out.open("w", encoding="utf-8") as f:
        for line in wave.read_text("utf-8").splitlines():
            row = json.loads(line)
            assert row["method"] == "POST" and row["url"] == "/v1/chat/completions"
            meta = store.cache.batch_request(row["custom_id"]) if store else None
            headers = {STAGE_HEADER: meta["stage"]} if meta and meta["stage"] else {}
            body = httpx.post(f"{base_url}/chat/completions", json=row["body"],
                              headers=headers).json()
            f.write(json.dumps({"id": "b", "custom_id": row["custom_id"], "error": None,
                                "response": {"status_code": 200, "body": body}},
                               ensure_ascii=False) + "\n")
    return out


def test_eval_generate_batch_waves_equal_online(tmp_path):
    """Eval generation as Batch API waves stores the same answers as an online run."""
    from coig_writer.evaluate.generate import GenerateJob
    from coig_writer.executors.run import run_job
    from coig_writer.executors.spec import ExecutorSpec

    prompts = [EvalPrompt(id=f"p{i}", lang="zh", prompt=f"写第{i}首诗") for i in range(3)]

    def handle(body):
        return 200, reply("诗" + body["messages"][-1]["content"][-4:], reasoning="想"), 0.0

    def answers(store: Store) -> list[tuple]:
        return sorted((g.prompt_id, g.answer, g.thinking) for g in store.evaluation.generations())

    with _Server(handle) as srv:
        with Store(tmp_path / "online.sqlite") as s:
            llm = CachedBackend(backend(srv), s)
            run_job(s, GenerateJob(s, llm, "m", prompts), llm)
            expected = answers(s)
        with Store(tmp_path / "batch.sqlite") as s:
            be = backend(srv)
            llm = CachedBackend(be, s)
            _, info = run_job(s, GenerateJob(s, llm, "m", prompts), llm,
                              ExecutorSpec(batch_out=tmp_path / "w"))
            assert info["requests"] == 3 and not s.evaluation.generations()
            out = answer_wave(Path(info["wave"]), srv.base_url)
            llm = CachedBackend(be, s)
            _, info = run_job(s, GenerateJob(s, llm, "m", prompts), llm,
                              ExecutorSpec(batch_in=out, batch_out=tmp_path / "w"))
            assert info["loaded"]["loaded"] == 3 and info["wave"] is None
            assert answers(s) == expected and len(expected) == 3
