"""The pipeline and CLI against a real llama.cpp server: JSON mode, kill -9 and resume."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
import yaml

from coig_writer.llm import ChatRequest, parse_json_object
from coig_writer.llm.openai_compat import OpenAICompatBackend
from coig_writer.store import Store

from .conftest import SAMPLE, fast_config
from .servers import CountingProxy

pytestmark = pytest.mark.slow


def cli(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "COIG_WRITER_DB": ""}
    env.pop("COIG_WRITER_DB")
    return subprocess.Popen([sys.executable, "-m", "coig_writer.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def test_server_json_mode(llama_server):
    import asyncio

    be = OpenAICompatBackend(llama_server, "qwen-0.5b", max_retries=0)
    req = ChatRequest.build([{"role": "user", "content": '用 JSON 回答：{"quality": 0-10 的整数}。'
                              "评价：床前明月光，疑是地上霜。"}], json_mode=True, max_tokens=40)
    obj = parse_json_object(asyncio.run(be.chat(req)).text)
    assert isinstance(obj, dict) and obj


def test_kill_9_and_resume_without_repeated_calls_or_duplicates(llama_server, tmp_path):
    db = tmp_path / "run.sqlite"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(fast_config(screen_threshold=0).model_dump()), "utf-8")
    corpus = tmp_path / "two.jsonl"
    corpus.write_text("".join(SAMPLE.read_text("utf-8").splitlines(keepends=True)[:2]), "utf-8")
    ingest = cli("construct", "ingest", str(corpus), "--db", str(db))
    assert ingest.wait(60) == 0, ingest.stdout.read()
    with CountingProxy(llama_server) as proxy:
        args = ("construct", "run", "--db", str(db), "--backend", "openai", "--base-url",
                proxy.base_url, "--model", "qwen-0.5b",
                "--config", str(cfg), "--concurrency", "1")
        first = cli(*args)
        deadline = time.time() + 300
        while len(proxy.requests) < 4 and time.time() < deadline and first.poll() is None:
            time.sleep(0.05)
        assert first.poll() is None, "run finished before it could be killed: " + first.stdout.read()
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        sent_before_kill = len(proxy.requests)
        with Store(db) as s:
            cached_before = len(s.cache.cache_rows())
        assert cached_before >= 3  # finished calls were persisted before the kill

        second = cli(*args)
        out = second.communicate(timeout=600)[0]
        assert second.returncode == 0, out
        assert "cache hits" in out

        third = cli(*args)
        assert third.wait(120) == 0
        bodies = [json.dumps(b, sort_keys=True, ensure_ascii=False) for b in proxy.requests]

    repeated = [b for b, n in Counter(bodies).items() if n > 1]
    assert len(repeated) <= 1  # only the request in flight at the kill may be sent again
    assert len(bodies) > sent_before_kill  # the rerun did the remaining work
    with Store(db) as s:
        assert len(s.cache.cache_rows()) == len(set(bodies))
        trips = list(s.construct.iter_triplets())
        assert len(trips) == 2 and len({t.id for t in trips}) == 2
        assert all(t.query or t.status != "accepted" for t in trips)
        runs = s.runs.runs()
        assert len(runs) == 3 and runs[0]["finished_at"] is None
        assert runs[2]["summary"]["pending"] == 0
    status = cli("construct", "status", "--db", str(db))
    assert "interrupted" in status.communicate(timeout=60)[0]
