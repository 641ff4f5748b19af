"""Scale-out: endpoint routing and failover, and the Ray executor on a real local Ray instance
(worker and driver killed with -9, identical results to the local executor)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from coig_writer.construct.pipeline import ConstructPipeline
from coig_writer.construct.runner import run_local, run_on_ray
from coig_writer.executors.spec import ExecutorSpec
from coig_writer.llm import BackendSpec, ChatRequest, Endpoint
from coig_writer.llm.openai_compat import OpenAICompatBackend
from coig_writer.records import SourceText
from coig_writer.store import Store

from .review_fixtures import GOLD, GOLD_TEXT, StageStub
from .servers import _Server, completion

TEXT = GOLD_TEXT  # a bundled text: the stub answers it with its hand-written triplet


def req(i: int) -> ChatRequest:
    return ChatRequest.build([{"role": "user", "content": f"q{i}"}])


def test_failover_routes_around_a_failing_endpoint():
    with _Server(lambda b: (500, {"error": {"message": "down"}}, 0.0)) as bad, \
            _Server(lambda b: (200, completion("ok"), 0.01)) as good:
        be = OpenAICompatBackend([Endpoint(url=bad.base_url), Endpoint(url=good.base_url)],
                                 "stub", max_retries=4, backoff_s=0.001, concurrency=4)

        async def go():
            out = await asyncio.gather(*(be.chat(req(i)) for i in range(40)))
            await be.aclose()
            return out

        out = asyncio.run(go())
    assert all(r.text == "ok" and r.endpoint == good.base_url for r in out)
    # the failing endpoint was taken out after a few failures instead of getting every retry
    assert len(bad.requests) <= 8 and len(good.requests) == 40


def test_least_loaded_routing_and_unreachable_endpoint_error():
    with _Server(lambda b: (200, completion("a"), 0.05)) as a, \
            _Server(lambda b: (200, completion("b"), 0.05)) as b:
        be = OpenAICompatBackend([Endpoint(url=a.base_url, max_concurrency=4),
                                  Endpoint(url=b.base_url, max_concurrency=4)], "stub")

        async def go():
            out = await asyncio.gather(*(be.chat(req(i)) for i in range(32)))
            await be.aclose()
            return out

        asyncio.run(go())
    assert len(a.requests) + len(b.requests) == 32 and min(len(a.requests), len(b.requests)) >= 12
    assert max(a.max_inflight, b.max_inflight) <= 4

    from coig_writer.llm import LLMError

    dead = OpenAICompatBackend("http://127.0.0.1:9/v1", "stub", max_retries=1, backoff_s=0.001)
    with pytest.raises(LLMError, match="127.0.0.1:9.*after 2 attempts"):
        asyncio.run(dead.chat(req(0)))


def test_endpoints_file_errors_name_the_file(tmp_path):
    from coig_writer.llm import LLMError, load_endpoints

    f = tmp_path / "eps.yaml"
    f.write_text("- url: http://127.0.0.1:8000/v1\n  weight: heavy\n")
    with pytest.raises(LLMError, match=r"eps.yaml: endpoint 1"):
        load_endpoints(f)
    f.write_text("- http://127.0.0.1:8000/v1\n- {url: http://127.0.0.1:8001/v1, rpm: 60}\n")
    eps = load_endpoints(f)
    assert [e.url for e in eps] == ["http://127.0.0.1:8000/v1", "http://127.0.0.1:8001/v1"]


# -- Ray ----------------------------------------------------------------------------------------
ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             _node_ip_address="127.0.0.1")
    yield
    ray.shutdown()


def fill(store: Store, n: int) -> None:
    """n texts, the bundled ones in turn, each with its number appended (so they differ): the
    stub answers each with its hand-written triplet, which the gate accepts."""
    for i in range(n):
        store.corpus.add_source(SourceText(id=f"s{i:03d}", text=f"{GOLD[i % len(GOLD)]['answer']}{i}"))


def snapshot(store: Store) -> list[dict]:
    return sorted((t.model_dump(exclude={"run_id", "created_at", "updated_at"})
                   for t in store.construct.iter_triplets()), key=lambda t: t["id"])


def spec(url: str, model: str = "stub") -> BackendSpec:
    return BackendSpec(kind="openai", model=model, base_url=[url], concurrency=4)


def on_ray(workers: int = 2, shard_size: int = 32) -> ExecutorSpec:
    return ExecutorSpec(kind="ray", workers=workers, shard_size=shard_size, concurrency=16)


def bodies(srv) -> Counter:
    return Counter(json.dumps(b, sort_keys=True, ensure_ascii=False) for b in srv.requests)


def test_ray_and_local_give_identical_triplets(local_ray, tmp_path):
    with StageStub() as stub:
        with Store(tmp_path / "local.sqlite") as s:
            fill(s, 6)
            be = OpenAICompatBackend(stub.base_url, "stub")
            asyncio.run(run_local(ConstructPipeline(s, be), concurrency=3))
            expected = snapshot(s)
        local_calls = len(stub.requests)
        with Store(tmp_path / "ray.sqlite") as s:
            fill(s, 6)
            summary = run_on_ray(ConstructPipeline(s, OpenAICompatBackend(stub.base_url, "stub")),
                                 spec(stub.base_url), on_ray(2, 2))
            assert snapshot(s) == expected and len(expected) == 6
            assert summary.statuses["accepted"] == 6 and summary.llm_calls == 30
            assert not list(Path(f"{s.path}.shards").glob("*.sqlite"))  # merged and removed
        assert len(stub.requests) == 2 * local_calls
        # the same cached answers, copied into a fresh store: Ray replays them, sends nothing
        with Store(tmp_path / "local.sqlite") as src, Store(tmp_path / "replay.sqlite") as s:
            fill(s, 6)
            s.cache.put_cache_rows(src.cache.cache_rows_for_items([f"s{i:03d}" for i in range(6)]))
            before = len(stub.requests)
            run_on_ray(ConstructPipeline(s, OpenAICompatBackend(stub.base_url, "stub")),
                       spec(stub.base_url), on_ray(2, 3))
            assert snapshot(s) == expected and len(stub.requests) == before


def test_ray_worker_killed_mid_run_repeats_no_completed_call(local_ray, tmp_path):
    import psutil

    killed: list[int] = []

    def killer(stub) -> None:
        deadline = time.time() + 60
        while len(stub.requests) < 12 and time.time() < deadline:
            time.sleep(0.02)
        for p in psutil.process_iter(["cmdline"]):
            if any("run_shard" in c for c in (p.info["cmdline"] or [])):
                os.kill(p.pid, signal.SIGKILL)
                killed.append(p.pid)
                return

    with StageStub(delay=0.15) as stub, Store(tmp_path / "ray.sqlite") as s:
        fill(s, 8)
        t = threading.Thread(target=killer, args=(stub,))
        t.start()
        summary = run_on_ray(ConstructPipeline(s, OpenAICompatBackend(stub.base_url, "stub")),
                             spec(stub.base_url), on_ray(2, 4))
        t.join()
        assert killed, "no Ray worker was found to kill"
        counts = bodies(stub)
        assert len(snapshot(s)) == 8 and summary.statuses["accepted"] == 8
        # only calls in flight in the killed worker (at most its concurrency) are sent again
        assert sum(n - 1 for n in counts.values()) <= 4
        assert s.cache.cache_count() == len(counts)


def cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "coig_writer.cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def test_ray_driver_killed_then_rerun_finishes_without_duplicates(tmp_path):
    db = tmp_path / "run.sqlite"
    with Store(db) as s:
        fill(s, 12)
    with StageStub(delay=0.1) as stub:
        args = ("construct", "run", "--db", str(db), "--backend", "openai", "--base-url",
                stub.base_url, "--model", "stub", "--executor", "ray", "--workers", "2",
                "--shard-size", "3", "--concurrency", "3")
        first = cli(*args)
        deadline = time.time() + 120
        while len(stub.requests) < 25 and time.time() < deadline and first.poll() is None:
            time.sleep(0.05)
        assert first.poll() is None, first.stdout.read()
        os.killpg(first.pid, signal.SIGKILL)  # the driver and the Ray instance it started
        first.wait(30)
        time.sleep(1)
        second = cli(*args)
        out = second.communicate(timeout=300)[0]
        assert second.returncode == 0, out
        counts = bodies(stub)
    with Store(db) as s:
        assert len(snapshot(s)) == 12 and s.construct.count_triplets() == {"accepted": 12}
        assert s.cache.cache_count() == len(counts)
    assert sum(n - 1 for n in counts.values()) <= 6  # at most the calls in flight at the kill
    assert not list(Path(f"{db}.shards").glob("*.sqlite"))


def test_eval_generate_and_judge_on_ray_match_local(local_ray, tmp_path):
    """The same generate and pairwise-judge jobs on Ray and locally give the same records."""
    from coig_writer.evaluate.generate import GenerateJob
    from coig_writer.evaluate.judge import Judge, JudgeJob
    from coig_writer.evaluate.prompt_sets import add_prompt_set
    from coig_writer.executors.run import run_job
    from coig_writer.llm import CachedBackend

    def handle(body):
        user = body["messages"][-1]["content"]
        if body.get("response_format"):  # the judge: the longer answer wins
            a, b = user.split("[A]")[-1], user.split("[B]")[-1] if "[B]" in user else ""
            return 200, completion(json.dumps({"overall": "A" if len(a) >= len(b) else "B",
                                               "reason": "r"})), 0.0
        return 200, completion(f"{body['model']}:{len(user)}" * (2 if "诗" in user else 1)), 0.0

    def records(store: Store) -> tuple[list, list]:
        gens = sorted((g.model, g.prompt_id, g.answer) for g in store.evaluation.generations())
        judg = sorted((j.key, j.winner) for j in store.evaluation.judgments())
        return gens, judg

    out = {}
    with _Server(handle) as srv:
        for executor in ("local", "ray"):
            with Store(tmp_path / f"{executor}.sqlite") as s:
                add_prompt_set(s, "bundled-zh")
                prompts = s.evaluation.eval_prompts()[:4]
                for name in ("m1", "m2"):
                    llm = CachedBackend(OpenAICompatBackend(srv.base_url, name), s)
                    run_job(s, GenerateJob(s, llm, name, prompts), llm,
                            ExecutorSpec(kind=executor, shard_size=2), spec(srv.base_url, name))
                llm = CachedBackend(OpenAICompatBackend(srv.base_url, "judge"), s)
                job = JudgeJob(Judge(s, llm, "judge"), prompts, ["m1", "m2"], "pairwise")
                res, _ = run_job(s, job, llm, ExecutorSpec(kind=executor, shard_size=3),
                                 spec(srv.base_url, "judge"))
                assert res.labels["done"] == 8 and not res.errors
                out[executor] = records(s)
    assert out["ray"] == out["local"] and len(out["local"][0]) == 8 and len(out["local"][1]) == 8


def test_unreachable_ray_address_fails_fast_with_advice(tmp_path):
    db = tmp_path / "s.sqlite"
    with Store(db) as s:
        fill(s, 1)
    t0 = time.time()
    p = cli("construct", "run", "--db", str(db), "--backend", "openai", "--base-url",
            "http://127.0.0.1:9/v1", "--model", "stub", "--executor", "ray", "--ray-address",
            "127.0.0.1:1")
    out = p.communicate(timeout=60)[0]
    assert p.returncode == 2 and time.time() - t0 < 30
    assert "cannot reach Ray at 127.0.0.1:1" in out and "ray start --head" in out
