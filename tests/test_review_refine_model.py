"""The refinement worker with the real 0.5B model behind a real llama.cpp server: whatever the
small model answers, the request ends recorded (a new version, or a failure with its reason),
the item is back in review, and a rerun sends nothing and writes nothing again."""

import asyncio

import pytest

from coig_writer.construct.pipeline import ConstructPipeline
from coig_writer.llm import make_backend
from coig_writer.review import service
from coig_writer.review.refine import refine_pending
from coig_writer.store import Store

from .conftest import fast_config
from .review_fixtures import POLICY, build

pytestmark = pytest.mark.slow


def test_refine_with_real_model(llama_server, tmp_path):
    db = tmp_path / "review.sqlite"
    build(db)
    first = sorted(r for i, r in Store(db).review.assignments() if i == "cw-3")[0]

    async def run(s: Store) -> dict:
        be = make_backend("openai", model="qwen-0.5b", base_url=llama_server, concurrency=1)
        try:
            pipe = ConstructPipeline(s, be, fast_config(max_rounds=0))
            return (await refine_pending(s, pipe, max_attempts=1)).as_dict()
        finally:
            await be.aclose()

    with Store(db) as s:
        service.decide(s, "cw-3", first, "send_back", "指令要写明收信人和情境", 0, POLICY,
                       fields=["reasoning"])
        out = asyncio.run(run(s))
        assert out["pending"] == 1 and out["llm_calls"] >= 1
        (ref,) = s.review.refinements("cw-3")
        assert ref["status"] in ("done", "failed") and ref["attempts"] == 1
        t = s.construct.get_triplet("cw-3")
        assert t.status != "refining" and service.next_item(s, first, POLICY) == "cw-3"
        if ref["status"] == "done":
            assert [v["editor"] for v in s.review.versions("cw-3")] == ["model:" + ref["model"]]
            assert t.query == "写一封信" and t.thought != "用户想要一封信"  # prompt kept
            assert ref["cache_keys"]
        else:
            assert ref["reason"] and s.review.versions("cw-3") == []
        again = asyncio.run(run(s))
        assert again["pending"] == 0 and again["llm_calls"] == 0
        assert len(s.review.refinements("cw-3")) == 1 and len(s.review.versions("cw-3")) <= 1
