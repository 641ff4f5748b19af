"""A store written by the previous release (commit 7b43ba6's single-class Store API, file
tests/data/store_v0_1.sqlite) opens with the area store, keeps its records, replays its cache
and takes new writes; and read-only opening never writes."""

import asyncio
import shutil
import sqlite3

import pytest

from coig_writer.llm import CachedBackend, make_backend
from coig_writer.llm.base import ChatRequest
from coig_writer.store import Store, StoreError

OLD = "tests/data/store_v0_1.sqlite"
KEY = "d9d5b5fbfbe5709098d587573cdeaf33622cfcd48d17c0bb947d6748b739ce0c"


@pytest.fixture
def old_store(tmp_path):
    path = tmp_path / "old.sqlite"
    shutil.copy(OLD, path)
    return path


def test_previous_release_store_opens_and_keeps_its_records(old_store):
    with Store(old_store) as s:
        assert s.corpus.get_source("s1").provenance.title == "静夜思"
        assert [q.line for q in s.corpus.iter_quarantine()] == [3]
        t = s.construct.get_triplet("cw-s1")
        assert t.status == "accepted" and t.thought == "用户想要一首诗……"  # the saved edit
        assert s.review.triplet_version("cw-s1") == 1
        assert s.review.version_data("cw-s1", 1).thought == "用户想要一首诗……"
        assert [r["decision"] for r in s.review.reviews("cw-s1")] == ["accept"]
        assert s.review.assignments(item_id="cw-s1") == [("cw-s1", "bob")]
        assert s.review.guideline("poetry")["text"] == "押韵"
        assert {u["username"] for u in s.auth.users()} == {"alice", "bob"}
        assert s.auth.audit_log()[0]["action"] == "login"
        assert s.evaluation.generations("G")[0].answer == "诗"
        assert s.usefulness.usefulness("cw-s1")["gain"] == 0.3
        assert s.runs.runs()[0]["summary"]["statuses"] == {"accepted": 1}
        assert s.construct.stages_for("s1")[0].cache_keys == [KEY]
        # new writes work on the old file
        s.review.add_review("cw-s1", "alice", "accept", "", 1, round=0)
        assert len(s.review.reviews("cw-s1")) == 2


def test_previous_release_cache_replays_without_a_call(old_store):
    # an endpoint nobody listens on: any call would fail, so the answer must come from the cache
    backend = make_backend("openai", model="qwen-test", base_url="http://127.0.0.1:9/v1")
    req = ChatRequest(messages=[{"role": "user", "content": "写一首关于月亮的诗"}],
                      stage="reasoning", item="s1", max_tokens=64)
    assert req.key(backend.model_id) == KEY  # the cache key scheme did not change
    with Store(old_store) as s:
        cached = CachedBackend(backend, s)
        resp = asyncio.run(cached.chat(req))
        assert (resp.text, resp.thinking, resp.cached) == ("月亮高挂", "先想意象", True)
        assert resp.usage["prompt_tokens_details"]["cached_tokens"] == 8
        assert cached.misses == 0


def test_readonly_store_reads_and_refuses_writes(old_store):
    old_store.chmod(0o444)
    old_store.parent.chmod(0o555)  # no -wal / -shm file can be made beside it either
    try:
        with Store(old_store, readonly=True) as s:
            assert s.construct.count_triplets() == {"accepted": 1}
            with pytest.raises(sqlite3.OperationalError):
                s.review.add_review("cw-s1", "x", "accept", "", 1)
    finally:
        old_store.parent.chmod(0o755)
        old_store.chmod(0o644)
    with pytest.raises(StoreError, match="no store at"):
        Store(old_store.parent / "missing.sqlite", readonly=True)
