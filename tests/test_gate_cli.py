"""`construct gate FILE --out OUT` over the hand-written triplets and their planted defects.

The judge is a stub that finds every triplet coherent and scores it 9 with probability 0.95 in
every dimension (a sure, lenient judge), so what the gate decides here is the LLM-free checks'
doing: no good triplet is flagged or rejected, every planted defect is kept from acceptance with
its check named, form against genre only asks for review. The real model's part is measured by
`construct audit-gates` (tests/test_audit.py, docs/gates.md)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from coig_writer.cli import app
from coig_writer.records import SCORE_DIMENSIONS
from coig_writer.store import Store

from .servers import _Server, completion, stage_of
from .test_expected_scores import logprobs_for

ROOT = Path(__file__).resolve().parents[1]
GOLD = ROOT / "src/coig_writer/data/sample/triplets_zh.jsonl"
DEFECTS = ROOT / "tests/data/gate/defects_zh.jsonl"


def lenient_judge() -> _Server:
    def answer(body):
        stage = stage_of(body)
        if stage == "validate":
            return 200, completion(json.dumps({"coherent": True, "issues": [],
                                               "suggestion": ""})), 0.0
        assert stage == "score", stage  # the gate reconstructs and writes nothing
        text = json.dumps({d: 9 for d in SCORE_DIMENSIONS} | {"comment": "好"})
        out = completion(text)
        out["choices"][0]["logprobs"] = logprobs_for(text, {i: {"9": 0.95, "8": 0.05}
                                                            for i in range(6)})
        return 200, out, 0.0
    return _Server(answer)


def _gate(tmp_path: Path, infile: Path, url: str, *extra: str):
    return CliRunner().invoke(app, ["construct", "gate", str(infile), "--out",
                                    str(tmp_path / "verdicts.jsonl"), "--db",
                                    str(tmp_path / "g.sqlite"), "--backend", "openai",
                                    "--base-url", url, "--model", "stub", "--json", *extra])


def test_gate_a_file_of_good_and_defective_triplets(tmp_path):
    rows = [json.loads(x) for p in (GOLD, DEFECTS) for x in p.read_text("utf-8").splitlines()]
    infile = tmp_path / "in.jsonl"
    bad_row = json.dumps({"id": "no-thought", "query": "写一首诗", "answer": "春眠不觉晓"})
    infile.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
                      + bad_row + "\n" + "{not json\n", "utf-8")
    with lenient_judge() as judge:
        res = _gate(tmp_path, infile, judge.base_url, "--store")
        assert res.exit_code == 0, res.output
        summary = json.loads(res.stdout)
        assert summary["rows"] == len(rows) and summary["quarantined"] == 2
        out = [json.loads(x) for x in (tmp_path / "verdicts.jsonl").read_text().splitlines()]
        assert [r["id"] for r in out] == [r["id"] for r in rows]  # input order, one each
        sent = len(judge.requests)
        distinct = {(r["query"], r["thought"], r["answer"]) for r in rows}
        assert sent == 2 * len(distinct)  # validate + score per distinct triplet, nothing else

        again = _gate(tmp_path, infile, judge.base_url)
        assert again.exit_code == 0 and len(judge.requests) == sent  # resumed: nothing asked

    by_id = {r["id"]: r for r in out}
    for r in rows:
        v = by_id[r["id"]]
        assert v["expected_scores"]["text_quality"] == 8.95 and v["score_rule"] == "expected"
        expect = r.get("expect_checks")
        if not expect:  # hand-written good triplets and numbered good prompts
            assert v["status"] == "accepted" and v["checks"] == [], (r["id"], v["reasons"])
        elif r["defect"] in ("verse_as_essay", "prose_as_verse"):
            assert v["status"] == "needs_review" and v["checks"] == ["form_mismatches_genre"]
        else:
            assert v["status"] != "accepted", r["id"]
            assert set(expect) & set(v["checks"]), (r["id"], v["checks"])
            assert any(c in reason for c in expect for reason in v["reasons"])
    assert summary["statuses"]["accepted"] == 13  # 10 hand-written + 3 numbered prompts
    with Store(tmp_path / "g.sqlite") as s:
        kept = s.construct.get_triplet("defect-4-json_reasoning")
        assert kept.pipeline_status == "needs_review" and "reasoning_not_prose" in kept.checks
        assert sum(1 for _ in s.corpus.iter_quarantine()) == 2


def test_an_edited_row_is_judged_again(tmp_path):
    g = json.loads(GOLD.read_text("utf-8").splitlines()[0])
    infile = tmp_path / "one.jsonl"
    infile.write_text(json.dumps(g, ensure_ascii=False) + "\n", "utf-8")
    with lenient_judge() as judge:
        assert _gate(tmp_path, infile, judge.base_url).exit_code == 0
        g["thought"] = '{"理解与规划": "我首先仔细阅读了写作指令"}'
        infile.write_text(json.dumps(g, ensure_ascii=False) + "\n", "utf-8")
        res = _gate(tmp_path, infile, judge.base_url)
        assert len(judge.requests) == 4
    [v] = [json.loads(x) for x in (tmp_path / "verdicts.jsonl").read_text().splitlines()]
    assert v["status"] != "accepted" and "reasoning_not_prose" in v["checks"], res.output


def test_another_config_is_another_gate(tmp_path):
    """A rerun with other settings judges again (its LLM calls replayed from the cache)."""
    g = json.loads(GOLD.read_text("utf-8").splitlines()[1])
    infile = tmp_path / "one.jsonl"
    infile.write_text(json.dumps(g, ensure_ascii=False) + "\n", "utf-8")
    with lenient_judge() as judge:
        assert _gate(tmp_path, infile, judge.base_url).exit_code == 0
        res = _gate(tmp_path, infile, judge.base_url, "--score-rule", "argmax")
        assert res.exit_code == 0 and len(judge.requests) == 2  # nothing asked again
    [v] = [json.loads(x) for x in (tmp_path / "verdicts.jsonl").read_text().splitlines()]
    assert v["score_rule"] == "argmax" and v["status"] == "accepted"
