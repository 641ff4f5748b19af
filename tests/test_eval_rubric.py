"""Rubric and pairwise judging over HTTP against a stub OpenAI server (for scale and for what a
small model cannot be made to do on demand: answer without a required field), and the report
over rubric scores (p < 1e-10 printed in scientific notation)."""

import asyncio
import json
import re

import pytest
from scipy import stats

from coig_writer.evaluate.analysis import analyze
from coig_writer.evaluate.judge import Judge, JudgeTask
from coig_writer.evaluate.report import write_report
from coig_writer.llm.openai_compat import OpenAICompatBackend
from coig_writer.records import Criterion, EvalPrompt, Generation

from .servers import FaultServer, _Server, completion

BANDS = {"1-2": "bad", "3-4": "weak", "5-6": "fair", "7-8": "good", "9-10": "excellent"}


def rubric_prompts(n: int, lang: str = "en", k: int = 5) -> list[EvalPrompt]:
    return [EvalPrompt(id=f"p{i:03d}", lang=lang, prompt=f"Write story {i}", set_name="t",
                       domain="Literature & Arts", subdomain=("Poetry", "Fiction")[i % 2],
                       criteria=[Criterion(name=f"c{c}-{i}", description=f"criterion {c}",
                                           bands=BANDS) for c in range(k)])
            for i in range(n)]


def fill(store, prompts, models=("good", "bad")) -> None:
    for p in prompts:
        store.evaluation.put_eval_prompt(p)
        for m in models:
            text = f"{m.upper()} answer to {p.id} " + "word " * (40 if m == "good" else 10)
            store.evaluation.put_generation(Generation(model=m, prompt_id=p.id, raw=text, answer=text))


def scoring_server() -> _Server:
    """Scores GOOD answers 8 and others 4 (as a consistent judge would)."""
    def handle(body):
        user = body["messages"][-1]["content"]
        score = 8 if re.search(r"Answer:\s*<<<\s*GOOD", user) else 4
        return 200, completion(json.dumps({"reason": "fits the band", "score": score})), 0.0
    return _Server(handle)


def backend(url: str, **kw) -> OpenAICompatBackend:
    return OpenAICompatBackend(url, "stub-judge", api_key_env="STUB_KEY", **kw)


def test_rubric_judge_at_scale_resumes_and_reports(store, tmp_path):
    prompts = rubric_prompts(50)
    fill(store, prompts)
    with scoring_server() as srv:
        judge = Judge(store, backend(srv.base_url, concurrency=8), "stub", concurrency=8)
        tasks = judge.tasks(prompts, ["good", "bad"], "rubric")
        assert len(tasks) == 500 and tasks[0] == JudgeTask.model_validate_json(
            tasks[0].model_dump_json())  # serializable for remote executors
        assert asyncio.run(judge.run(prompts, ["good", "bad"], "rubric")) == 500
        assert len(srv.requests) == 500 and srv.max_inflight > 1 and not judge.failures
        # requests arrive in any order at concurrency 8: look for the first criterion's one
        sent = next(r for r in srv.requests if "criterion 0" in r["messages"][-1]["content"])
        assert "9-10: excellent" in sent["messages"][-1]["content"]
        schema = sent["response_format"]["json_schema"]["schema"]  # constrained output
        assert sent["response_format"]["type"] == "json_schema" and schema["required"] == [
            "reason", "score"]
        again = Judge(store, backend(srv.base_url), "stub")
        assert again.tasks(prompts, ["good", "bad"], "rubric") == []
        assert asyncio.run(again.run(prompts, ["good", "bad"], "rubric")) == 0
        assert len(srv.requests) == 500  # a rerun sends nothing
    scores = store.evaluation.rubric_scores()
    assert {(r.model, r.score) for r in scores} == {("good", 8.0), ("bad", 4.0)}
    assert all(r.template_hash and r.cache_keys and r.criterion_name for r in scores)

    res = analyze(store, models=["good", "bad"], rounds=200)
    rub = res["rubric"]
    assert rub["models"] == ["good", "bad"]
    assert rub["overall"]["good"]["mean"] == 8 and rub["overall"]["good"]["mean_100"] == 80
    (pair,) = rub["paired"]
    assert pair["mean_diff"] == 4 and pair["wins"] == 50
    assert pair["wilcoxon_p"] == stats.wilcoxon([8.0] * 50, [4.0] * 50).pvalue < 1e-10
    assert set(rub["by_subdomain"]) == {"Fiction", "Poetry"} and rub["by_language"]["en"]
    html = write_report(res, {}, tmp_path / "rep")["html"].read_text("utf-8")
    assert "1.5e-12" in html and "p=0<" not in html and ">0<" not in html


def test_missing_field_is_retried_with_the_error_shown(store):
    prompts = rubric_prompts(1)
    fill(store, prompts, ("x", "y"))
    p = prompts[0]
    with FaultServer([("ok", '{"winner": "A", "reason": "A is vivid"}'),
                      ("ok", '{"overall": "A", "verdict": "A>>B", "reason": "A is vivid"}')]
                     ) as srv:
        judge = Judge(store, backend(srv.base_url), "stub")
        gx, gy = store.evaluation.generations("x")[0], store.evaluation.generations("y")[0]
        j = asyncio.run(judge.pair(p, gx, gy))
    assert j is not None and j.winner == "x" and j.verdict == "A>>B", judge.failures
    assert len(srv.requests) == 2
    retry = srv.requests[1]["messages"]
    assert retry[-2] == {"role": "assistant", "content": '{"winner": "A", "reason": "A is vivid"}'}
    assert 'no usable "overall"' in retry[-1]["content"]
    assert len(j.cache_keys) == 2 and store.evaluation.judgments()[0].verdict == "A>>B"


def test_rerun_after_unusable_cached_answers_asks_again(store):
    prompts = rubric_prompts(1)
    fill(store, prompts, ("x",))
    with FaultServer([("ok", '{"reason": "no score here"}')]) as srv:
        judge = Judge(store, backend(srv.base_url), "stub", attempts=2)
        assert asyncio.run(judge.run(prompts, ["x"], "rubric")) == 0
        assert len(srv.requests) == 10  # 5 criteria x 2 attempts
        assert all('no usable "score"' in e for e in judge.failures.values())
    assert store.evaluation.rubric_scores() == []
    with FaultServer([("ok", '{"reason": "fits", "score": 6}')]) as srv:
        judge = Judge(store, backend(srv.base_url), "stub", attempts=2)
        assert asyncio.run(judge.run(prompts, ["x"], "rubric")) == 5
        assert 5 <= len(srv.requests) <= 10 and not judge.failures  # asked again, not replayed
    assert [r.score for r in store.evaluation.rubric_scores()] == [6.0] * 5


@pytest.mark.slow
def test_rubric_judge_with_the_real_small_model(store, llama_server):
    prompts = rubric_prompts(2, "zh", k=2)
    fill(store, prompts, ("x",))
    judge = Judge(store, backend(llama_server), "qwen-0.5b", max_tokens=80, concurrency=2)
    n = asyncio.run(judge.run(prompts, ["x"], "rubric"))
    scores = store.evaluation.rubric_scores()
    assert n == len(scores) == 4 - len(judge.failures) and n >= 2, judge.failures
    assert all(1 <= r.score <= 10 and r.reason for r in scores)  # schema-constrained JSON
    assert len(judge.tasks(prompts, ["x"], "rubric")) == 4 - n  # a rerun asks only the rest


def test_judge_job_spec_round_trip_through_the_local_executor(store):
    from coig_writer.evaluate.judge import JudgeJob, judge_job
    from coig_writer.executors.local import run_local
    from coig_writer.llm import CachedBackend

    prompts = rubric_prompts(2)
    fill(store, prompts)
    with scoring_server() as srv:
        driver = JudgeJob(Judge(store, backend(srv.base_url), "stub"), prompts, ["good", "bad"],
                          "rubric")
        items = [json.loads(t.model_dump_json()) for t in driver.pending()]  # as shipped
        assert len(items) == driver.count_pending() == 20
        worker = judge_job(json.loads(json.dumps(driver.spec())), store,
                           CachedBackend(backend(srv.base_url), store))
        out = asyncio.run(run_local(worker, items, concurrency=4))
    assert out.labels["done"] == 20 and not out.errors
    assert driver.count_pending() == 0 and len(store.evaluation.rubric_scores(judge="stub")) == 20


def test_cli_rubric_judge_and_report(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from coig_writer.cli import app
    from coig_writer.store import Store

    db = tmp_path / "s.sqlite"
    with Store(db) as store:
        fill(store, rubric_prompts(3))
    monkeypatch.setenv("STUB_KEY", "sk-test-not-real")
    with scoring_server() as srv:
        args = ["eval", "judge", "good", "bad", "--mode", "rubric", "--db", str(db), "--backend",
                "openai", "--base-url", srv.base_url, "--model", "stub", "--api-key-env",
                "STUB_KEY", "--judge-name", "stub"]
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 0 and "30 new verdicts by stub" in r.output, r.output
    r = CliRunner().invoke(app, ["eval", "report", "--db", str(db), "--out", str(tmp_path / "o"),
                                 "--rounds", "100"])
    assert r.exit_code == 0, r.output
    html = (tmp_path / "o" / "report.html").read_text("utf-8")
    assert "Rubric scores" in html and "Wilcoxon" in html
