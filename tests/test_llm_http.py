"""The OpenAI-compatible backend under injected faults (loopback stub server)."""

import asyncio
import json

import pytest

from coig_writer.llm import CachedBackend, ChatRequest, LLMError, chat_json, parse_json_object
from coig_writer.llm.json_output import JSONOutputError
from coig_writer.llm.openai_compat import OpenAICompatBackend

from .servers import FaultServer


def req(text: str = "hi", **kw) -> ChatRequest:
    return ChatRequest.build([{"role": "user", "content": text}], **kw)


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("STUB_KEY", "sk-test-not-real")


def backend(server: FaultServer, **kw) -> OpenAICompatBackend:
    kw.setdefault("max_retries", 3)
    kw.setdefault("timeout_s", 5)
    kw.setdefault("backoff_s", 0.01)
    return OpenAICompatBackend(server.base_url, "stub", api_key_env="STUB_KEY", **kw)


@pytest.mark.parametrize("fault", ["429", "500"])
def test_retries_on_429_and_5xx(fault):
    with FaultServer([(fault,), (fault,), ("ok", "fine")]) as srv:
        resp = asyncio.run(backend(srv).chat(req()))
    assert resp.text == "fine"
    assert len(srv.requests) == 3


def test_retries_on_timeout():
    with FaultServer([("slow", 3.0, "late"), ("ok", "quick")]) as srv:
        resp = asyncio.run(backend(srv, timeout_s=1.0).chat(req()))
    assert resp.text == "quick"
    assert len(srv.requests) == 2


def test_gives_up_with_clear_error():
    with FaultServer([("500",)]) as srv:
        with pytest.raises(LLMError, match="HTTP 500"):
            asyncio.run(backend(srv, max_retries=1).chat(req()))
    assert len(srv.requests) == 2


def test_request_parameters_and_no_key_leak():
    with FaultServer([("ok", "{}")]) as srv:
        asyncio.run(backend(srv).chat(req(temperature=0.3, max_tokens=77, json_mode=True, seed=5)))
    body = srv.requests[0]
    assert body["model"] == "stub" and body["max_tokens"] == 77 and body["seed"] == 5
    assert body["response_format"] == {"type": "json_object"}
    assert "sk-test-not-real" not in json.dumps(body)


def test_concurrency_is_bounded():
    async def go(be):
        await asyncio.gather(*(be.chat(req(str(i))) for i in range(8)))

    with FaultServer([("ok", "x", 0.2)]) as srv:
        asyncio.run(go(backend(srv, concurrency=3)))
    assert len(srv.requests) == 8 and srv.max_inflight == 3


def test_cache_never_resends_a_completed_request(store):
    async def go():
        cached = CachedBackend(backend(srv), store)
        a = await cached.chat(req("same"))
        b = await cached.chat(req("same"))
        c = await cached.chat(req("same", tags={"screen": "hash2"}))  # template change
        return a, b, c, cached

    with FaultServer([("ok", "answer")]) as srv:
        a, b, c, cached = asyncio.run(go())
    assert (a.cached, b.cached, c.cached) == (False, True, False)
    assert a.key == b.key != c.key
    assert len(srv.requests) == 2 and (cached.hits, cached.misses) == (1, 2)
    row = store.cache.cache_rows()[0]
    assert row["request"]["messages"][0]["content"] == "same" and row["response"] == "answer"


def test_concurrent_identical_requests_are_sent_once(store):
    async def go():
        cached = CachedBackend(backend(srv), store)
        return await asyncio.gather(*(cached.chat(req("dup")) for _ in range(4)))

    with FaultServer([("ok", "one", 0.3)]) as srv:
        out = asyncio.run(go())
    assert [r.text for r in out] == ["one"] * 4 and len(srv.requests) == 1


def test_json_repair_or_retry(store):
    async def go(tag: str):
        return await chat_json(CachedBackend(backend(srv), store),
                               req(json_mode=True, tags={"t": tag}), "not JSON ($error)", retries=1)

    with FaultServer([("ok", "I think the score is high"), ("ok", '```json\n{"a": 1}\n```')]) as srv:
        obj, resps = asyncio.run(go("first"))
    assert obj == {"a": 1} and len(resps) == 2
    retry_msgs = srv.requests[1]["messages"]
    assert retry_msgs[-2] == {"role": "assistant", "content": "I think the score is high"}
    assert retry_msgs[-1]["content"].startswith("not JSON (no JSON object")

    with FaultServer([("ok", "still prose")]) as srv:
        with pytest.raises(JSONOutputError, match="after 2 answers"):
            asyncio.run(go("second"))
    assert len(srv.requests) == 2


@pytest.mark.parametrize("text,expected", [
    ('{"a": 1}', {"a": 1}),
    ('Sure! {"a": 1} hope this helps', {"a": 1}),
    ('```json\n{"a": "x"}\n```', {"a": "x"}),
    ('{"a": 1, "b": [1, 2,],}', {"a": 1, "b": [1, 2]}),
    ('{"quality": 9, "reason": "好"', {"quality": 9, "reason": "好"}),
])
def test_parse_json_object(text, expected):
    assert parse_json_object(text) == expected


def test_parse_json_object_rejects_non_objects():
    for bad in ["[1, 2]", "no json", ""]:
        with pytest.raises(JSONOutputError):
            parse_json_object(bad)
