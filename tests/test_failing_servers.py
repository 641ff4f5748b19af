"""No run that never ends (issue 21, failure 5): against a server that fails in each of the
ways below, `construct run`, `eval generate` and `eval judge` give up with exit 1, the reason and
each endpoint's last error, leave their items pending, and a rerun against a working server
continues. Every run is a real CLI process under a hard timeout, so a hang fails the test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from coig_writer.construct.ingest import ingest
from coig_writer.records import EvalPrompt, Generation
from coig_writer.store import Store

from .servers import FaultServer

SRC = str(Path(__file__).resolve().parents[1] / "src")
FAST = ["--max-failures", "3", "--timeout", "1"]


def run_cli(*args: object, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "coig_writer.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture
def corpus_db(tmp_path: Path) -> Path:
    f = tmp_path / "c.jsonl"
    poem = "春眠不觉晓，处处闻啼鸟。"
    f.write_text("\n".join(json.dumps({"id": f"t{i}", "text": f"第{i}篇：" + poem * (i + 2)},
                                      ensure_ascii=False) for i in range(4)), "utf-8")
    db = tmp_path / "s.sqlite"
    with Store(db) as s:
        ingest([f], s)
    return db


@pytest.mark.parametrize("fault,reason", [
    (("500",), "HTTP 500"),
    (("badjson",), "answer is not JSON"),
    (("reset",), "reset"),
    (("halfclose",), "Server"),
    (("hang",), "no answer within 1 s"),
    (("retry-after", 86400), "asking to wait 86400 s"),
])
def test_construct_run_gives_up_on_a_failing_server(corpus_db, fault, reason):
    with FaultServer([fault]) as srv:
        r = run_cli("construct", "run", "--db", corpus_db, "--backend", "openai", "--base-url",
                    srv.base_url, "--model", "stub", "--limit", "4", *FAST)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "giving up: every endpoint failed 3 attempts in a row" in out
    assert srv.base_url in out and reason.lower() in out.lower(), out
    assert "4 texts left pending" in out and "Traceback" not in out
    assert len(srv.requests) <= 3 + 4  # the limit, plus the calls already in flight


def test_give_up_after_seconds_and_a_rerun_continues(tmp_path):
    db = tmp_path / "s.sqlite"
    with Store(db) as s:
        for i in range(3):
            s.evaluation.put_eval_prompt(EvalPrompt(id=f"p{i}", lang="en", prompt=f"Write {i}."))
    gen = ["eval", "generate", "--name", "M", "--db", db, "--backend", "openai", "--model", "m"]
    with FaultServer([("500",)]) as srv:
        r = run_cli(*gen, "--base-url", srv.base_url, "--max-failures", "0",
                    "--give-up-after", "1")
    out = r.stdout + r.stderr
    assert r.returncode == 1 and "has been failing for 1 s" in out and "HTTP 500" in out, out
    assert "3 prompts left pending" in out
    with FaultServer([("ok", "An answer.")]) as srv:
        r = run_cli(*gen, "--base-url", srv.base_url)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 new answers" in r.stdout and len(srv.requests) == 3


def test_eval_judge_gives_up_with_two_endpoints(tmp_path):
    db = tmp_path / "s.sqlite"
    with Store(db) as s:
        s.evaluation.put_eval_prompt(EvalPrompt(id="p", lang="en", prompt="Write."))
        for m in ("A", "B"):
            s.evaluation.put_generation(Generation(model=m, prompt_id="p", raw=m, answer=m))
    with FaultServer([("500",)]) as a, FaultServer([("reset",)]) as b:
        r = run_cli("eval", "judge", "A", "B", "--db", db, "--backend", "openai", "--model", "j",
                    "--base-url", a.base_url, "--base-url", b.base_url, *FAST)
    out = r.stdout + r.stderr
    assert r.returncode == 1 and "giving up" in out, out
    assert a.base_url in out and b.base_url in out  # the last error of each endpoint
    assert "judgments left pending" in out


def test_a_short_retry_after_is_obeyed_and_does_not_count_as_failing(tmp_path):
    db = tmp_path / "s.sqlite"
    with Store(db) as s:
        s.evaluation.put_eval_prompt(EvalPrompt(id="p", lang="en", prompt="Write."))
    script = [("retry-after", 0)] * 5 + [("ok", "Done.")]
    with FaultServer(script) as srv:
        r = run_cli("eval", "generate", "--name", "M", "--db", db, "--backend", "openai",
                    "--model", "m", "--base-url", srv.base_url, "--max-failures", "2",
                    "--concurrency", "1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(srv.requests) == 6  # five 429s waited out (no give-up at 2), then the answer
