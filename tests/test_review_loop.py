"""The review loop: send back with feedback -> the refinement worker (through a loopback stub
OpenAI server answering the construction stages, since the 0.5B model cannot be made to pass the
score thresholds on demand) -> re-review with diff, scores and feedback -> human acceptance
gates the export. Includes kill -9 of the worker in a subprocess and a rerun."""

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import yaml
from typer.testing import CliRunner

from coig_writer.cli import app as cli
from coig_writer.construct.config import ConstructConfig
from coig_writer.construct.pipeline import ConstructPipeline
from coig_writer.llm import make_backend
from coig_writer.review import service
from coig_writer.review.refine import refine_pending
from coig_writer.store import Store

from .review_fixtures import POLICY, STUB_PROMPT, StageStub, build, checks_off
from .servers import FaultServer
from .test_review_hardening import assigned, client, login

# the fixture texts are a few characters long and the stub's answers do not fit them: the
# LLM-free checks are off here, this is about the review loop (tests/test_checks.py: the checks)
LOOSE = ConstructConfig.model_validate(checks_off())


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "review.sqlite"
    build(path)
    return path


def cached(s: Store) -> list[tuple[str, str]]:
    """(key, request JSON) of every answered LLM call in the store's cache."""
    return s.db.execute("SELECT key, request FROM llm_cache").fetchall()


def refine(db, base_url: str) -> dict:
    async def go(s: Store) -> dict:
        be = make_backend("openai", model="stub", base_url=base_url, concurrency=2)
        try:
            return (await refine_pending(s, ConstructPipeline(s, be, LOOSE),
                                         max_attempts=1)).as_dict()
        finally:
            await be.aclose()

    with Store(db) as s:
        return asyncio.run(go(s))


def test_send_back_refine_rereview_accept_export(db, tmp_path):
    first, second = assigned(db, "cw-3")
    a, b = client(db), client(db)
    ta, tb = login(a, first), login(b, second)
    form = {"decision": "send_back", "version": "0", "csrf": ta, "fields": ["prompt", "reasoning"],
            "query": "写一封信", "thought": "用户想要一封信", "answer": "亲爱的朋友：你好。"}
    missing = a.post("/review/cw-3", data={**form, "reason": " "})
    assert missing.status_code == 400 and "needs feedback" in missing.text
    r = a.post("/review/cw-3", data={**form, "reason": "FB-letter 指令要写明收信人和情境"})
    assert r.status_code == 303
    with Store(db) as s:
        assert s.construct.get_triplet("cw-3").status == "refining"
        assert service.item_status(s, s.construct.get_triplet("cw-3"), POLICY) == "refining"
        assert service.next_item(s, second, POLICY) != "cw-3"  # out of the queues
    page = b.get("/review/cw-3").text
    assert 'id="refining"' in page and 'id="decide"' not in page
    blocked = b.post("/review/cw-3", data={"decision": "accept", "version": "0", "csrf": tb})
    assert blocked.status_code == 400 and "being refined" in blocked.text

    with StageStub() as stub:
        summary = refine(db, stub.base_url)
        assert summary["outcomes"] == {"done": 1} and summary["llm_calls"] == 4
        # the reviewer's feedback reached the model in the refinement prompt
        assert any("FB-letter" in m["content"] for req in stub.requests for m in req["messages"])
        assert refine(db, stub.base_url)["pending"] == 0  # nothing left, no second version
    with Store(db) as s:
        t = s.construct.get_triplet("cw-3")
        assert t.query == STUB_PROMPT and "FB-letter" in t.thought
        assert t.status == "accepted" and t.pipeline_status == "accepted"
        (v,) = s.review.versions("cw-3")
        assert v["editor"] == "model:openai:stub" and "+" + STUB_PROMPT in v["diff"]
        (ref,) = s.review.refinements("cw-3")
        assert ref["status"] == "done" and ref["to_version"] == 1 and len(ref["cache_keys"]) == 4
        assert set(ref["cache_keys"]) <= {k for k, _ in cached(s)}
        assert service.next_item(s, first, POLICY) == "cw-3"  # back to the same reviewers first
        assert "cw-3" not in service.human_accepted_ids(s, POLICY)  # the pipeline is not a human

    page = a.get("/review/cw-3").text
    assert 'id="rereview"' in page and "FB-letter 指令要写明收信人和情境" in page
    assert re.search(r'id="diff-query">[^<]*\+写一封给久别老友的信', page)
    assert re.search(r"<th>before</th>(<td>6</td>){6}<td>36</td>", page)
    assert re.search(r"<th>after</th>(<td>9</td>){6}<td>54</td>", page)
    assert re.search(r"id=\"progress\">\d+ / \d+ done", page)
    for c, tok in ((a, ta), (b, tb)):
        r = c.post("/review/cw-3", data={"decision": "accept", "version": "1", "csrf": tok,
                                         "reason": "better now"})
        assert r.status_code == 303, r.text
    with Store(db) as s:
        assert service.human_accepted_ids(s, POLICY) == {"cw-3"}
        hist = service.history(s, "cw-3")
        assert [len(h["reviews"]) for h in hist] == [1, 2] and hist[0]["refinement"]["to_version"] == 1
        assert service.acceptance_counts(s, POLICY)["human_accepted"] == 1

    adm = client(db)
    login(adm, "admin")
    item = next(i for i in adm.get("/admin/export").json()["items"] if i["id"] == "cw-3")
    assert item["status"] == "accepted" and item["version"] == 1 and item["query"] == STUB_PROMPT
    assert [r["decision"] for r in item["reviews"]] == ["send_back", "accept", "accept"]
    assert item["refinements"][0]["feedback"].startswith("FB-letter")
    out = tmp_path / "reviewed.jsonl"
    res = CliRunner().invoke(cli, ["data", "export", str(out), "--db", str(db), "--status", "all",
                                   "--reviewed", "--full"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in out.read_text("utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["cw-3"] and rows[0]["query"] == STUB_PROMPT
    assert rows[0]["review_status"] == "accepted"
    stats = CliRunner().invoke(cli, ["data", "stats", "--db", str(db)])
    assert "human accepted 1" in stats.output and "pipeline accepted 1" in stats.output


def test_failed_refinement_returns_to_reviewer_with_reason(db):
    first = assigned(db, "cw-3")[0]
    with Store(db) as s:
        service.decide(s, "cw-3", first, "send_back", "FB-x 重写指令", 0, POLICY, fields=["prompt"])
    with FaultServer([("ok", "短")]) as bad:  # a prompt too short to use, every time
        assert refine(db, bad.base_url)["outcomes"] == {"failed": 1}
    with Store(db) as s:
        t = s.construct.get_triplet("cw-3")
        (ref,) = s.review.refinements("cw-3")
        assert ref["status"] == "failed" and "prompt too short" in ref["reason"]
        assert t.status == "needs_review" and t.query == "写一封信" and s.review.versions("cw-3") == []
        assert service.next_item(s, first, POLICY) == "cw-3"
    c = client(db)
    login(c, first)
    page = c.get("/review/cw-3").text
    assert "prompt too short" in page and 'id="no-diff"' in page and 'id="decide"' in page


def test_backend_down_keeps_request_open_then_gives_up(db):
    with Store(db) as s:
        service.decide(s, "cw-3", "admin", "send_back", "FB-y", 0, POLICY)
        be = make_backend("openai", model="stub", base_url="http://127.0.0.1:9/v1",
                          concurrency=1, max_retries=0)
        pipe = ConstructPipeline(s, be, LOOSE)

        async def twice() -> list[dict]:
            out = [(await refine_pending(s, pipe, max_attempts=2)).as_dict()]
            out.append({"status": s.review.refinements("cw-3")[0]["status"]})
            out.append((await refine_pending(s, pipe, max_attempts=2)).as_dict())
            await be.aclose()
            return out

        first, between, second = asyncio.run(twice())
        assert first["outcomes"] == {"retry": 1} and between["status"] == "pending"
        assert second["outcomes"] == {"failed": 1}
        assert "backend error" in s.review.refinements("cw-3")[0]["reason"]


def test_rereview_any_policy_opens_item_to_other_reviewers(db):
    any_k = service.ReviewPolicy(k=2, per_genre={"poetry": 3}, rereview="any")
    first, second = assigned(db, "cw-3")
    other = next(r for r in ("rev1", "rev2", "rev3") if r not in (first, second))
    with Store(db) as s, StageStub() as stub:
        service.decide(s, "cw-3", first, "send_back", "FB-z", 0, any_k)
        assert not service.may_decide(s, "cw-3", other, "reviewer", any_k)
        refine(db, stub.base_url)
        assert service.may_decide(s, "cw-3", other, "reviewer", any_k)
        assert not service.may_decide(s, "cw-3", other, "reviewer", POLICY)
        assert service.next_item(s, other, any_k) == "cw-3"
        service.decide(s, "cw-3", other, "accept", "", 1, any_k)
        service.decide(s, "cw-3", first, "accept", "", 1, any_k)
        assert service.item_status(s, s.construct.get_triplet("cw-3"), any_k) == "accepted"
        assert service.next_item(s, second, any_k) != "cw-3"


def test_refine_worker_killed_and_rerun(db, tmp_path):
    with Store(db) as s:
        for item in ("cw-1", "cw-2", "cw-3"):
            service.decide(s, item, "admin", "send_back", f"FB-{item[-1]} 改进", 0, POLICY)
    loose = tmp_path / "loose.yaml"
    loose.write_text(yaml.safe_dump(checks_off()), "utf-8")
    cmd = [sys.executable, "-m", "coig_writer.cli", "review", "refine", "--db", str(db),
           "--backend", "openai", "--model", "stub", "--concurrency", "1", "--config", str(loose)]
    with StageStub(delay=0.3) as stub:
        cmd += ["--base-url", stub.base_url]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env={**os.environ, "OPENAI_API_KEY": "x"})
        deadline = time.time() + 60
        while len(stub.requests) < 6 and time.time() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(0.4)  # let the in-flight request finish on the stub side
        with Store(db) as s:
            done_before = {json.dumps(json.loads(r)["messages"], ensure_ascii=False)
                           for _, r in cached(s)}
            assert 0 < len(done_before) < 12
        n0 = len(stub.requests)
        rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                               env={**os.environ, "OPENAI_API_KEY": "x"})
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        resent = [json.dumps(r["messages"], ensure_ascii=False) for r in stub.requests[n0:]]
    assert not done_before & set(resent)  # no completed call was sent again
    with Store(db) as s:
        for item in ("cw-1", "cw-2", "cw-3"):
            assert [v["editor"] for v in s.review.versions(item)] == ["model:openai:stub"], item
            (ref,) = s.review.refinements(item)
            assert ref["status"] == "done" and ref["to_version"] == 1
        assert len(cached(s)) == 12  # 4 stages x 3 items, each answered once
    assert "3 requests" not in rerun.stdout and "done" in rerun.stdout


def test_reviewed_gate_for_mix_build(db, tmp_path):
    with Store(db) as s:
        for t in s.construct.iter_triplets():  # the pipeline accepted everything
            t.status = "accepted"
            s.construct.put_triplet(t)
        for r in assigned(db, "cw-3"):
            service.decide(s, "cw-3", r, "accept", "", 0, POLICY)
        service.save_policy(s, POLICY)
        assert service.acceptance_counts(s, POLICY)["pipeline_accepted"] == 3
    counts = []
    for extra in ([], ["--reviewed"]):
        out = tmp_path / f"mix{len(extra)}"
        res = CliRunner().invoke(cli, ["mix", "build", "--db", str(db), "--out", str(out), *extra])
        assert res.exit_code == 0, res.output
        counts.append(json.loads((out / "manifest.json").read_text("utf-8"))["counts"]["creative"])
    assert counts == [3, 1]
