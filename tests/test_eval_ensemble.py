"""A judge ensemble through the command line: one OpenAI-compatible loopback server answers as
two judge models (a fair one that recognises the better answer, and one that always picks the
answer shown first, which no real model does on demand); `eval judge --judge` runs both, and
the report gives each judge's figures, the pooled ones, their agreement and the warnings."""

import json
import re
import shutil

from typer.testing import CliRunner

from coig_writer.cli import app
from coig_writer.cli.evaluate import judge_plan
from coig_writer.records import EvalPrompt, Generation
from coig_writer.store import Store

from .servers import _Server, completion


def two_judges() -> _Server:
    def handle(body):
        user = body["messages"][-1]["content"]
        a = re.search(r"Answer A:\s*<<<\s*(\w+)", user).group(1)
        b = re.search(r"Answer B:\s*<<<\s*(\w+)", user).group(1)
        rank = {"GOOD": 2, "MID": 1, "BASE": 0}
        if body["model"] == "first-judge":
            slot = "A"
        else:
            slot = "A" if rank[a] > rank[b] else "B"
        verdict = {"A": "A>B", "B": "B>A"}[slot]
        dims = {d: slot for d in ("content_quality", "creative_merit",
                                  "cultural_appropriateness", "task_fulfilment", "overall")}
        return 200, completion(json.dumps({**dims, "verdict": verdict, "reason": "r"})), 0.0
    return _Server(handle)


def test_ensemble_judges_through_the_cli(tmp_path, monkeypatch):
    db = tmp_path / "s.sqlite"
    with Store(db) as store:
        for i in range(8):
            store.evaluation.put_eval_prompt(EvalPrompt(id=f"e{i}", lang="en", prompt=f"Write poem {i}."))
            for m in ("good", "mid", "base"):
                text = f"{m.upper()} poem {i} " + "line " * (10 + 3 * i)
                store.evaluation.put_generation(Generation(model=m, prompt_id=f"e{i}", raw=text,
                                                answer=text))
    monkeypatch.setenv("STUB_KEY", "sk-test-not-real")
    with two_judges() as srv:
        args = ["eval", "judge", "good", "mid", "base", "--db", str(db), "--backend", "openai",
                "--base-url", srv.base_url, "--api-key-env", "STUB_KEY",
                "--judge", "fair-judge", "--judge", "first=first-judge"]
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 0, r.output
        assert "48 new verdicts by fair-judge" in r.output and "48 new verdicts by first" in r.output
        assert "judge pairwise" in r.output  # the usage table names the stage
        assert {q["model"] for q in srv.requests} == {"fair-judge", "first-judge"}
        assert len(srv.requests) == 96
        r = CliRunner().invoke(app, args)  # a rerun asks nothing
        assert r.exit_code == 0 and len(srv.requests) == 96, r.output
    with Store(db) as store:
        assert {j.judge for j in store.evaluation.judgments()} == {"fair-judge", "first"}
    r = CliRunner().invoke(app, ["eval", "estimate", "good", "mid", "base", "--db", str(db),
                                 "--judge", "fair-judge", "--judge", "first=first-judge"])
    assert r.exit_code == 0 and r.output.count("0 calls (48 already done)") == 2, r.output
    assert "all 2 judges: 0 calls" in r.output

    out = tmp_path / "rep"
    r = CliRunner().invoke(app, ["eval", "report", "--db", str(db), "--out", str(out),
                                 "--rounds", "100", "--baseline", "base"])
    assert r.exit_code == 0, r.output
    assert "WARNING" in r.output and "judge first prefers the answer shown first" in r.output
    res = json.loads((out / "results.json").read_text("utf-8"))
    assert res["judges"] == ["fair-judge", "first"]
    fair, first = res["judges_detail"]["fair-judge"], res["judges_detail"]["first"]
    assert fair["pair_consistency"] == {"consistent": 24, "inconsistent": 0, "single_order": 0}
    assert first["position"]["first_position_rate"] == 1.0
    assert fair["win_rate"]["mean_win_rate"] == [1.0, 0.5, 0.0]
    assert res["informative"] == {"pairwise": True, "reason": None,
                                  "judges_not_informative": ["first"]}
    assert [w["judge"] for w in res["warnings"] if w["code"] == "position_bias"] == ["first"]
    (agree,) = res["judge_agreement"]  # first only ever ties (it flips every pair): kappa 0
    assert agree["judge_a"] == "fair-judge" and agree["n"] == 24 and agree["cohen_kappa"] == 0
    arena = {row["model"]: row for row in res["arena"]["rows"]}
    per = {row["model"]: row for row in res["arena"]["by_judge"]["fair-judge"]["rows"]}
    assert per["good"]["score"] == 100 and per["mid"]["score"] == 100
    assert arena["good"]["score"] == 75  # pooled: fair's 16 wins, first's 8 wins and 8 losses
    html = (out / "report.html").read_text("utf-8")
    assert "Judges (ensemble): each judge alone" in html and "fair-judge, first" in html
    first_alone = html.split("Judge first alone")[1].split("</table>")[0]
    assert first_alone.count("<td>not informative</td>") == 2  # good and mid, not the baseline


def test_judge_plan_forms():
    plan = judge_plan(["a=m1@http://x/v1", "m2"], None, None, ["http://y/v1"], None)
    assert plan == [("a", "m1", ["http://x/v1"], None), ("m2", "m2", ["http://y/v1"], None)]
    assert judge_plan(None, "m", "name", ["http://y/v1"], None) == [
        ("name", "m", ["http://y/v1"], None)]


def test_endpoints_with_two_models_make_two_judges(tmp_path):
    f = tmp_path / "eps.yaml"
    f.write_text("- {url: 'http://a/v1', model: j1}\n- {url: 'http://b/v1', model: j2}\n"
                 "- {url: 'http://c/v1', model: j1}\n", "utf-8")
    plan = judge_plan(None, None, None, None, f)
    assert [p[0] for p in plan] == ["j1", "j2"]
    j1 = plan[0][3].read_text("utf-8")
    assert "http://a/v1" in j1 and "http://c/v1" in j1 and "http://b/v1" not in j1
    shutil.rmtree(plan[0][3].parent)


def test_endpoints_file_naming_two_models_runs_two_judges(tmp_path, monkeypatch):
    db = tmp_path / "s.sqlite"
    with Store(db) as store:
        for i in range(3):
            store.evaluation.put_eval_prompt(EvalPrompt(id=f"e{i}", lang="en", prompt="Write."))
            for m in ("good", "base"):
                text = f"{m.upper()} poem {i}"
                store.evaluation.put_generation(Generation(model=m, prompt_id=f"e{i}", raw=text,
                                                           answer=text))
    monkeypatch.setenv("STUB_KEY", "sk-test-not-real")
    with two_judges() as srv:
        f = tmp_path / "judges.yaml"
        f.write_text(f"- {{url: '{srv.base_url}', model: fair-judge}}\n"
                     f"- {{url: '{srv.base_url}', model: first-judge}}\n", "utf-8")
        r = CliRunner().invoke(app, ["eval", "judge", "good", "base", "--db", str(db),
                                     "--backend", "openai", "--endpoints", str(f),
                                     "--api-key-env", "STUB_KEY"])
        assert r.exit_code == 0, r.output
        assert [q["model"] for q in srv.requests].count("fair-judge") == 6
        assert [q["model"] for q in srv.requests].count("first-judge") == 6
    with Store(db) as store:
        by = {j.judge: j.winner for j in store.evaluation.judgments()
              if j.models == ["base", "good"]}
    assert by == {"fair-judge": "good", "first-judge": "base"}  # each judge on its endpoint
