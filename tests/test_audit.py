"""`construct audit-gates`: counterfactual variants that really carry their defect and are the
same in every process; the AUC and its bootstrap CI on inputs whose answer is known; the report's
counts and verdict lines; the page; and `construct gate` + `audit-gates` end to end on the 0.5B
model through the real embedded engine."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from coig_writer.cli import app
from coig_writer.construct.audit import ORIGINAL, AuditJob, audit_key, group_of
from coig_writer.construct.audit_page import page_html, plot_png
from coig_writer.construct.audit_report import auc, auc_ci, build_report, row_of
from coig_writer.construct.checks import CheckInput, ChecksConfig, instruction_overlap, run_checks
from coig_writer.construct.checks.instructions import template_text
from coig_writer.construct.checks.units import compact, squash
from coig_writer.construct.config import ConstructConfig
from coig_writer.construct.gate_job import GateItem, read_gate_items
from coig_writer.construct.variants import (
    DECISION_NAMES,
    GENERIC,
    KINDS,
    build_variants,
    generic_reasoning,
    parse_kinds,
    sentences,
)
from coig_writer.dataset.io import write_rows
from coig_writer.executors.base import job_from_spec
from coig_writer.llm import CachedBackend
from coig_writer.llm.openai_compat import OpenAICompatBackend
from coig_writer.prompts import load_template

from .conftest import TEST_MODEL, fast_config

ROOT = Path(__file__).resolve().parents[1]
GOLD = ROOT / "src/coig_writer/data/sample/triplets_zh.jsonl"
GOLD_EN = Path(__file__).parent / "data" / "gate" / "good_en.jsonl"
runner = CliRunner()


@pytest.fixture(scope="module")
def gold() -> list[GateItem]:
    items, bad = read_gate_items(GOLD)
    assert not bad and len(items) == 10
    return items


def _by_kind(variants) -> dict[str, list]:
    out: dict[str, list] = {}
    for v in variants:
        out.setdefault(v.kind, []).append(v)
    return out


def _fails(item: GateItem, others: list[str]) -> set[str]:
    res = run_checks(CheckInput(item.query, item.thought, item.answer, genre=item.genre,
                                others=tuple(others)), ChecksConfig())
    return {r.name for r in res if not r.passed}


# -- variants ---------------------------------------------------------------------------------
def test_every_kind_of_every_hand_written_triplet_carries_its_defect(gold):
    variants, skipped = build_variants(gold, seed=0)
    assert not skipped and len(variants) == 10 * len(KINDS)
    orig = {i.id: i for i in gold}
    by = _by_kind(variants)
    for v in variants:
        o = orig[v.of]
        assert v.item.id == f"{o.id}~{v.kind}" and v.kind in KINDS
        changed = {f for f in ("query", "thought", "answer") if getattr(v.item, f) != getattr(o, f)}
        assert changed == {{"prompt": "query", "reasoning": "thought",
                            "text": "answer"}[KINDS[v.kind].changes]}, v.kind
    for kind in ("prompt_of_another_text", "reasoning_of_another_text"):
        field = "query" if kind.startswith("prompt") else "thought"
        donors = [v.donor for v in by[kind]]
        assert sorted(donors) == sorted(orig)  # every triplet lends once, never to itself
        assert all(v.donor != v.of and getattr(v.item, field) == getattr(orig[v.donor], field)
                   for v in by[kind])
    for v in by["prompt_copies_text"]:
        assert v.item.query.startswith(orig[v.of].query)
        quoted = compact(re.findall(r"“(.+?)”", v.item.query)[-1])
        assert len(quoted) >= 12 and quoted in compact(orig[v.of].answer)
    standards = re.sub(r"[（(]\d[）)]", "", squash(template_text(load_template("shared/prefix", "zh"))))
    for v in by["prompt_of_guidelines"]:
        clauses = re.findall(r"\d\. (.+?)。", v.item.query)
        assert 3 <= len(clauses) <= 5 and all(squash(c) in standards for c in clauses)
        assert instruction_overlap(v.item.query)[0] >= 0.5
    for v in by["reasoning_as_json"]:
        obj = json.loads(v.item.thought)
        assert list(obj) == list(DECISION_NAMES["zh"])
        assert squash("".join(obj.values())) == squash(orig[v.of].thought)  # layout only
    for v in by["generic_reasoning"]:
        pieces = {p for options in GENERIC["zh"] for p in options}
        assert sum(1 for p in pieces if p in v.item.thought) == 5
    for v in by["shuffled_text"]:
        a, b = orig[v.of].answer, v.item.answer
        assert a != b and Counter(a) == Counter(b)  # the same characters ...
        ends = lambda t: re.sub(r"[^\n。！？；]", "", t)  # noqa: E731
        assert ends(a) == ends(b)  # ... and the same lines and sentence ends
    for v in by["truncated_reasoning"]:
        full = orig[v.of].thought
        assert full.startswith(v.item.thought) and 0.25 <= len(v.item.thought) / len(full) <= 0.5
        assert v.item.thought[-1] not in "。！？；，、 \n"


def test_the_generic_reasoning_fits_any_text_and_fails_only_the_grounding_checks(gold):
    a = generic_reasoning(gold[0], random.Random(3)).item.thought
    b = generic_reasoning(gold[5], random.Random(3)).item.thought
    assert a == b  # a function of the seed alone, not of the text
    others = [i.answer for i in gold]
    fails = _fails(generic_reasoning(gold[0], random.Random(3)).item, others)
    assert {"reasoning_generic", "reasoning_not_grounded"} <= fails
    assert not fails & {"reasoning_too_short", "reasoning_not_prose", "reasoning_not_first_person",
                        "reasoning_lacks_decisions"}


def test_variants_are_the_same_in_another_process_and_change_with_the_seed(gold):
    rows = [v.row() for v in build_variants(gold, seed=7)[0]]
    assert rows == [v.row() for v in build_variants(gold, seed=7)[0]]
    assert rows != [v.row() for v in build_variants(gold, seed=8)[0]]
    code = ("import json,sys; from pathlib import Path; "
            "from coig_writer.construct.gate_job import read_gate_items; "
            "from coig_writer.construct.variants import build_variants; "
            f"items,_=read_gate_items(Path({str(GOLD)!r})); "
            "print(json.dumps([v.row() for v in build_variants(items, seed=7)[0]]))")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out) == json.loads(json.dumps(rows))


def test_variant_rows_are_a_triplets_file_the_gate_reads(gold, tmp_path):
    variants, _ = build_variants(gold[:3], ["shuffled_text", "reasoning_as_json"], seed=1)
    path = tmp_path / "variants.jsonl"
    write_rows([v.row() for v in variants], path)
    items, bad = read_gate_items(path)
    assert not bad and [i.id for i in items] == [v.item.id for v in variants]
    assert [i.answer for i in items] == [v.item.answer for v in variants]


def test_english_triplets_get_english_variants():
    items, _ = read_gate_items(GOLD_EN)
    by = _by_kind(build_variants(items, seed=0)[0])
    assert list(json.loads(by["reasoning_as_json"][0].item.thought)) == list(DECISION_NAMES["en"])
    q = by["prompt_of_guidelines"][0].item.query
    assert q.startswith("Please understand and follow") and instruction_overlap(q)[0] >= 0.5
    assert by["generic_reasoning"][0].item.thought.startswith(("Reading the prompt", "I start"))
    orig = {i.id: i for i in items}
    for v in by["shuffled_text"]:
        words = lambda t: re.findall(r"[A-Za-z']+", t)  # noqa: E731
        assert v.item.answer != orig[v.of].answer
        assert Counter(words(v.item.answer)) == Counter(words(orig[v.of].answer))
        assert len(sentences(v.item.answer, "en")) == len(sentences(orig[v.of].answer, "en"))


def test_bad_requests_are_refused_and_unmakeable_variants_are_named(gold):
    with pytest.raises(ValueError, match="at least two triplets"):
        build_variants(gold[:1], ["prompt_of_another_text"])
    with pytest.raises(ValueError, match="unknown variant kinds"):
        parse_kinds("shuffled_text,nonsense")
    with pytest.raises(ValueError, match="repeat"):
        build_variants([gold[0], gold[0]], ["shuffled_text"])
    one = gold[0].model_copy(update={"id": "one", "answer": "春眠不觉晓"})
    made, skipped = build_variants([one], ["shuffled_text", "reasoning_as_json"])
    assert [v.kind for v in made] == ["reasoning_as_json"]
    assert [(s.kind, s.of) for s in skipped] == [("shuffled_text", "one")]
    assert "fewer than two" in skipped[0].why


# -- AUC and its CI ---------------------------------------------------------------------------
def test_auc_on_known_inputs():
    assert auc([3, 4, 5], [1, 2, 3]) == pytest.approx(8.5 / 9)  # one tie counts half
    assert auc([5, 6], [1, 2]) == 1.0 and auc([1, 2], [5, 6]) == 0.0
    assert auc([4, 4, 4], [4, 4]) == 0.5
    assert auc([], [1.0]) is None and auc_ci([1.0], []) is None
    assert auc_ci([5, 6, 7], [1, 2]) == (1.0, 1.0)  # no resample can reverse a clean split
    lo, hi = auc_ci([3, 4, 5], [1, 2, 3], seed=0)
    assert lo <= 8.5 / 9 <= hi and (lo, hi) == auc_ci([3, 4, 5], [1, 2, 3], seed=0)


def test_the_bootstrap_ci_matches_hanley_mcneil_on_a_large_sample():
    rng = np.random.default_rng(0)
    x, y = rng.normal(1.0, 1.0, 300), rng.normal(0.0, 1.0, 250)
    a = auc(x, y)
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    se = np.sqrt((a * (1 - a) + (300 - 1) * (q1 - a * a) + (250 - 1) * (q2 - a * a)) / (300 * 250))
    lo, hi = auc_ci(x, y, seed=1)
    assert a == pytest.approx(0.76, abs=0.04)  # Phi(1 / sqrt 2)
    assert lo == pytest.approx(a - 1.96 * se, abs=0.015) and hi == pytest.approx(a + 1.96 * se,
                                                                               abs=0.015)


# -- the report -------------------------------------------------------------------------------
def _verdict(status: str, ints: int, checks=(), coherent=True, expected: float | None = None):
    dims = ("prompt_quality", "prompt_creativity", "reasoning_quality", "reasoning_creativity",
            "text_quality", "text_creativity")
    return {"status": status, "checks": list(checks), "review_checks": [],
            "validation": {"coherent": coherent, "issues": []},
            "scores": {d: ints for d in dims},
            "expected_scores": None if expected is None else {d: expected for d in dims},
            "score_rule": "argmax" if expected is None else "expected",
            "reasons": [f"{c}: <bad & wrong>" for c in checks]}


def _rows(verdicts, kind=None):
    return [row_of(v, f"t{n}" + (f"~{kind}" if kind else ""), kind, f"t{n}", 8, 50)
            for n, v in enumerate(verdicts)]


def test_the_report_counts_what_caught_each_variant_and_says_so():
    orig = _rows([_verdict("accepted", 9, expected=8.8 + n / 100) for n in range(5)])
    by_checks = _rows([_verdict("needs_review", 9, ["reasoning_not_prose"], expected=8.8)] * 5,
                      "reasoning_as_json")
    by_scores = _rows([_verdict("needs_review", 7, expected=6.0)] * 4
                      + [_verdict("accepted", 9, expected=8.7)], "shuffled_text")
    blind = _rows([_verdict("accepted", 9, expected=8.8 + n / 100) for n in range(5)],
                  "truncated_reasoning")
    rep = build_report(orig, {"reasoning_as_json": by_checks, "shuffled_text": by_scores,
                              "truncated_reasoning": blind}, KINDS, rule="expected")
    assert rep["originals"]["false_reject_rate"] == 0.0
    j, s, t = rep["variants"]
    assert j["caught"] == 5 and j["caught_by"] == {"reasoning_not_prose": 5}
    assert j["verdict"].startswith("the named checks catch a reasoning laid out as JSON: caught 5/5")
    assert s["caught_by"] == {"low scores": 4} and s["caught_by_llm"] == 4
    assert s["auc"]["argmax"]["auc"] == pytest.approx(0.9)  # 4 below every original, 1 tied
    assert s["auc"]["expected"]["auc"] == 1.0  # 52.2 is below every original's 52.8-53.0
    assert s["verdict"].startswith("this gate catches a sentence-shuffled text: caught 4/5")
    assert t["auc"]["argmax"]["auc"] == 0.5 and t["caught"] == 0
    assert t["verdict"].startswith("this gate cannot tell a truncated reasoning from a real "
                                   "triplet (AUC 0.50 on expected scores")
    assert "; its scores rank the variants lower (AUC 1.00 on expected scores" in s["verdict"]
    rejecting = _rows([_verdict("needs_review", 7, expected=6.5)] * 5)
    rep = build_report(rejecting, {"shuffled_text": by_scores, "reasoning_as_json": by_checks},
                       KINDS, rule="expected")
    assert rep["originals"]["false_reject_rate"] == 1.0
    s, j = rep["variants"]
    assert s["verdict"].startswith("this gate turns away a sentence-shuffled text (4/5) but also "
                                   "5/5 real triplets; its scores")
    assert j["verdict"].startswith("the named checks catch a reasoning laid out as JSON: caught 5/5")
    assert j["verdict"].endswith("; the gate also turns away 5/5 real triplets")


def test_the_page_escapes_every_text_and_embeds_the_plot():
    orig = _rows([_verdict("accepted", 9), _verdict("needs_review", 6, ["prompt_copies_text"])])
    var = _rows([_verdict("needs_review", 6, ["<script>alert(1)</script>"])] * 2,
                "reasoning_as_json")
    rep = build_report(orig, {"reasoning_as_json": var}, KINDS, rule="argmax",
                       examples={"reasoning_as_json": {"field": "thought", "original": "a<b",
                                                       "variant": '{"x": "<i>"}'}})
    rep |= {"schema": "x", "model": "m<odel>", "score_rule": "argmax", "seed": 0,
            "thresholds": {"min_each": 8, "min_sum": 50}, "input": {"file": "f&g.jsonl"},
            "ci": {"method": "bootstrap", "rounds": 10}, "rows": orig + var}
    png = plot_png(rep)
    assert png.startswith(b"\x89PNG")
    page = page_html(rep, png)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "m&lt;odel&gt;" in page and "f&amp;g.jsonl" in page and "&lt;i&gt;" in page
    assert "data:image/png;base64," in page


# -- the job ----------------------------------------------------------------------------------
def test_each_group_is_checked_against_its_own_texts_and_rebuilds_on_a_worker(gold, store):
    cfg = ConstructConfig()
    llm = CachedBackend(OpenAICompatBackend("http://127.0.0.1:9/v1", "none"), store)  # not called
    variants, _ = build_variants(gold[:3], ["shuffled_text", "reasoning_as_json"])
    groups = {ORIGINAL: gold[:3]}
    for v in variants:
        groups.setdefault(v.kind, []).append(v.item)
    job = AuditJob(store, llm, cfg, groups, key=audit_key(cfg, llm.model_id))
    assert sorted(job.others_by_group) == [ORIGINAL, "shuffled_text"]  # JSON keeps the texts
    assert job.others_by_group["shuffled_text"] == [i.answer for i in groups["shuffled_text"]]
    assert {group_of(i) for i in job.items} == {ORIGINAL, "shuffled_text", "reasoning_as_json"}
    worker = job_from_spec(json.loads(json.dumps(job.spec())), store, llm)
    assert isinstance(worker, AuditJob) and worker.others_by_group == job.others_by_group
    assert audit_key(cfg, "model-a") != audit_key(cfg, "model-b")
    assert audit_key(cfg, "m") != audit_key(ConstructConfig(min_sum=40), "m")


# -- end to end on the real 0.5B --------------------------------------------------------------
@pytest.mark.slow
def test_gate_and_audit_gates_end_to_end_on_the_small_model(small_model, tmp_path):
    """One hand-written triplet (the 0.5B is slow on 2 cores): the gate, then the audit whose
    original replays the gate's calls, then a rerun with nothing to do."""
    two = tmp_path / "one.jsonl"
    two.write_text(GOLD.read_text("utf-8").splitlines(keepends=True)[0], "utf-8")
    cfg = tmp_path / "fast.yaml"
    cfg.write_text(yaml.safe_dump(fast_config().model_dump()), "utf-8")
    common = ["--db", str(tmp_path / "s.sqlite"), "--model", TEST_MODEL, "--config", str(cfg),
              "--concurrency", "1"]
    out = tmp_path / "verdicts.jsonl"
    r = runner.invoke(app, ["construct", "gate", str(two), "--out", str(out), *common])
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in out.read_text("utf-8").splitlines()]
    assert [x["id"] for x in rows] == ["gold-1"] and not any(x["checks"] for x in rows)
    assert all(x["status"] in ("accepted", "needs_review", "rejected") and x["scores"]
               and x["expected_scores"] for x in rows)  # the engine returns logprobs

    page, plot = tmp_path / "audit.html", tmp_path / "audit.png"
    args = ["construct", "audit-gates", "--file", str(two), "--variants", "reasoning_as_json",
            "--json", "--page", str(page), "--plot", str(plot), *common]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout[r.stdout.index("{"):])
    assert rep["schema"] == "coig-writer/audit-gates/1" and rep["pending"] == 0
    hits = {a["stage"]: a["cache_hits"] for a in rep["accounting"]}
    assert hits == {"validate": 1, "score": 1}  # the originals' calls were those of the gate
    assert rep["originals"]["judged"] == 1
    assert [x["status"] for x in rep["rows"][:1]] == [x["status"] for x in rows]
    [v] = rep["variants"]
    assert v["kind"] == "reasoning_as_json" and v["judged"] == 1
    assert v["caught"] == 1 and v["caught_by"]["reasoning_not_prose"] == 1
    for rule in ("argmax", "expected"):
        assert v["auc"][rule]["n_original"] == 1 and v["auc"][rule]["n_variant"] == 1
        assert 0 <= v["auc"][rule]["ci"][0] <= v["auc"][rule]["auc"] <= v["auc"][rule]["ci"][1] <= 1
    assert v["verdict"] and page.read_text("utf-8").count("reasoning_as_json") >= 2
    assert plot.read_bytes().startswith(b"\x89PNG")

    again = runner.invoke(app, args[:6] + ["--json", *common])  # resumable: nothing left to do
    assert again.exit_code == 0, again.output
    rerun = json.loads(again.stdout[again.stdout.index("{"):])
    assert rerun["accounting"] == [] and rerun["variants"] == rep["variants"]


# -- the command's input ----------------------------------------------------------------------
def test_bad_input_exits_2_with_the_reason(tmp_path):
    db = ["--db", str(tmp_path / "s.sqlite")]
    one = tmp_path / "one.jsonl"
    one.write_text(GOLD.read_text("utf-8").splitlines(keepends=True)[0], "utf-8")
    cases = [([], "give one of --status or --file"),
             (["--file", str(GOLD), "--status", "accepted"], "give one of --status or --file"),
             (["--status", "done"], "--status must be one of"),
             (["--file", str(GOLD), "--variants", "shuffled_text,nope"], "unknown variant kinds"),
             (["--file", str(one), "--variants", "prompt_of_another_text"], "at least two triplets"),
             (["--status", "accepted"], "holds no triplet the gate can judge with status accepted")]
    for args, why in cases:
        r = runner.invoke(app, ["construct", "audit-gates", *args, *db])
        assert r.exit_code == 2 and why in " ".join(r.output.split()), (args, r.output)


def test_stored_triplets_of_a_status_are_the_originals(store):
    from coig_writer.construct.audit import items_of_store
    from coig_writer.records import Triplet

    store.construct.put_triplet(Triplet(id="a", query="写一首诗", thought="我想……", answer="诗",
                                        status="accepted", genre="classical_shi"))
    store.construct.put_triplet(Triplet(id="b", query="写", thought="", answer="诗",
                                        status="accepted"))
    store.construct.put_triplet(Triplet(id="c", query="写", thought="想", answer="诗",
                                        status="rejected"))
    items, left = items_of_store(store, "accepted")
    assert [i.id for i in items] == ["a"] and items[0].genre == "classical_shi" and left == ["b"]


def test_a_variant_the_scores_prefer_is_called_so():
    orig = _rows([_verdict("accepted", 8, expected=8.0 + n / 100) for n in range(4)])
    liked = _rows([_verdict("accepted", 9, expected=9.0)] * 4, "generic_reasoning")
    [v] = build_report(orig, {"generic_reasoning": liked}, KINDS, rule="expected")["variants"]
    assert v["auc"]["expected"] == {"auc": 0.0, "ci": [0.0, 0.0], "n_original": 4, "n_variant": 4}
    assert v["verdict"] == ("this gate's scores prefer a generic reasoning to a real triplet (AUC "
                            "0.00 on expected scores, CI 0.00-0.00; caught 0/4)")
