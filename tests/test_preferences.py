"""Preference pairs: a stub construct run whose first round fails and second passes, a review
session with an edit and a send-back, and a judged eval (both orders) give DPO and reward-model
files that `datasets` loads and that train one DPO step of the tiny Qwen2 with TRL."""

from __future__ import annotations

import asyncio
import json

import pytest
import yaml
from typer.testing import CliRunner

from coig_writer.cli import app
from coig_writer.construct.pipeline import ConstructPipeline
from coig_writer.dataset.preferences import unpatch
from coig_writer.evaluate.judge import Judge
from coig_writer.evaluate.prompt_sets import add_prompt_set
from coig_writer.llm import CachedBackend, make_backend
from coig_writer.records import SCORE_DIMENSIONS, Generation
from coig_writer.review import service
from coig_writer.review.auth import add_user
from coig_writer.review.refine import refine_pending
from coig_writer.review.service import ReviewPolicy
from coig_writer.store import Store

from .conftest import SAMPLE, fast_config
from .review_fixtures import stage_answer
from .servers import _Server, completion, stage_of

datasets = pytest.importorskip("datasets")
FIXED = "（修订）"


def answer(body: dict) -> str:
    """Construction stages fail the first round (scores 6) and pass once the reasoning has
    seen the feedback; the judge prefers GOOD over BAD in either order and always says A when
    MID is in the pair (a position bias: its two orders disagree)."""
    user = body["messages"][-1]["content"]
    stage = stage_of(body)
    if stage == "judge pairwise":
        a_first = lambda x, y: user.index(x) < user.index(y)  # noqa: E731
        win = "A" if "MID-" in user or a_first("GOOD-", "BAD-") else "B"
        v = "A>>B" if win == "A" else "B>>A"
        dims = {d: win for d in ("content_quality", "creative_merit",
                                 "cultural_appropriateness", "task_fulfilment", "overall")}
        return json.dumps({**dims, "verdict": v, "reason": "更具体"})
    if stage == "reasoning":
        return (FIXED if "low scores" in user else "") + stage_answer(body)
    if stage == "score":
        score = 9 if FIXED in user else 6
        return json.dumps({d: score for d in SCORE_DIMENSIONS} | {"comment": "可再具体些"})
    return stage_answer(body)


def test_unpatch_recovers_the_old_text() -> None:
    old = "\n".join(f"line {i}" for i in range(12))
    new = old.replace("line 2", "line two").replace("line 9\n", "") + "\nextra"
    for a, b in ((old, new), (new, old), ("", "x"), ("x", ""), ("a\nb", "a\nb\nc")):
        assert unpatch(b, service.unified(a, b, "f@v0", "f@v1")) == a


def test_preferences_from_refinement_review_and_judgments_train_dpo(tmp_path) -> None:
    db = tmp_path / "s.sqlite"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(fast_config(screen_threshold=0, max_rounds=1).model_dump()),
                   "utf-8")
    corpus = tmp_path / "two.jsonl"
    corpus.write_text("".join(SAMPLE.read_text("utf-8").splitlines(keepends=True)[:2]), "utf-8")
    run = CliRunner()
    with _Server(lambda body: (200, completion(answer(body)), 0.0)) as stub:
        assert run.invoke(app, ["construct", "ingest", str(corpus), "--db", str(db)]).exit_code == 0
        r = run.invoke(app, ["construct", "run", "--db", str(db), "--backend", "openai",
                             "--base-url", stub.base_url, "--model", "stub", "--config", str(cfg)])
        assert r.exit_code == 0, r.output
        policy = ReviewPolicy(k=2)
        with Store(db) as s:
            trips = sorted(s.construct.iter_triplets(), key=lambda t: t.id)
            assert [t.status for t in trips] == ["accepted", "accepted"] and trips[0].rounds == 2
            for who in ("ann", "bob"):
                add_user(s, who, "correct horse battery", "reviewer")
                for t in trips:
                    s.review.assign(t.id, who)
            a, b = trips
            service.decide(s, a.id, "ann", "edit", "结尾更紧凑", 0, policy,
                           edits={"thought": a.thought + "\n最后删去空话，收紧结尾。"})
            service.decide(s, a.id, "bob", "accept", "", 1, policy)
            service.decide(s, b.id, "ann", "send_back", "FB-7 多写细节", 0, policy,
                           fields=["reasoning"])

            async def refine() -> None:
                be = make_backend("openai", model="stub", base_url=stub.base_url)
                try:
                    pipe = ConstructPipeline(s, be, fast_config(max_rounds=0))
                    await refine_pending(s, pipe)
                finally:
                    await be.aclose()

            asyncio.run(refine())
            for who in ("ann", "bob"):
                service.decide(s, b.id, who, "accept", "", 1, policy)
            assert s.construct.get_triplet(b.id).review_status == "accepted"

            add_prompt_set(s, "bundled-zh")
            prompts = s.evaluation.eval_prompts()[:2]
            for p in prompts:
                for m in ("GOOD", "BAD", "MID"):
                    s.evaluation.put_generation(Generation(model=m.lower(), prompt_id=p.id, raw="",
                                                answer=f"{m}-答案：{p.id}", thinking=f"{m} 的思考"))

            async def judge() -> None:
                llm = CachedBackend(make_backend("openai", model="stub", base_url=stub.base_url), s)
                try:
                    await Judge(s, llm, "stub-judge").run(prompts, ["good", "bad", "mid"])
                finally:
                    await llm.aclose()

            asyncio.run(judge())
            assert len(s.evaluation.judgments()) == 12  # 2 prompts x 3 model pairs x 2 orders

    out = tmp_path / "prefs.jsonl"
    r = run.invoke(app, ["data", "export-preferences", str(out), "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert "wrote 6 preference pairs" in r.output and "judgment 2, refinement 2, review 2" in r.output
    ds = datasets.load_dataset("json", data_files=str(out), split="train",
                               cache_dir=str(tmp_path / "hf"))
    rows = {row["id"]: row for row in ds}
    ref = next(r for r in rows.values() if r["source"] == "refinement")
    prov = json.loads(ref["provenance"])
    assert prov["chosen_round"] == 1 and prov["rejected_round"] == 0 and ref["margin"] == 18
    assert any("low scores" in x for x in prov["rejected_reasons"])
    assert FIXED in ref["chosen"][0]["content"] and FIXED not in ref["rejected"][0]["content"]
    assert ref["chosen"][0]["content"].startswith("<think>")
    kinds = {json.loads(r["provenance"])["kind"]: r for r in rows.values() if r["source"] == "review"}
    edit, back = kinds["review_edit"], kinds["review_send_back"]
    assert "收紧结尾" in edit["chosen"][0]["content"] and "收紧结尾" not in edit["rejected"][0]["content"]
    assert edit["rejected"][0]["content"] == f"<think>\n{a.thought}\n</think>\n\n{a.answer}"
    assert "FB-7" in back["chosen"][0]["content"] and json.loads(back["provenance"])["reason"] == \
        "FB-7 多写细节"
    judged = [r for r in rows.values() if r["source"] == "judgment"]
    assert all(r["chosen"][0]["content"].endswith(f"GOOD-答案：{json.loads(r['provenance'])['prompt_id']}")
               and "BAD-" in r["rejected"][0]["content"] and r["margin"] == 2 for r in judged)

    reward = tmp_path / "rm.parquet"
    r = run.invoke(app, ["data", "export-preferences", str(reward), "--db", str(db), "--format",
                         "reward", "--no-review", "--min-margin", "3", "--reasoning", "drop"])
    assert r.exit_code == 0, r.output
    # margin 2 < 3 drops the judgments; without reasoning the refinement pairs are identical
    assert "wrote 0 preference pairs" in r.output and "2 below min margin" in r.output
    assert "2 identical completions" in r.output
    r = run.invoke(app, ["data", "export-preferences", str(reward), "--db", str(db), "--format",
                         "reward", "--no-refinement"])
    rm = datasets.load_dataset("parquet", data_files=str(reward), split="train",
                               cache_dir=str(tmp_path / "hf"))
    assert len(rm) == 4 and [m["role"] for m in rm[0]["chosen"]] == ["user", "assistant"]

    _one_dpo_step(out, tmp_path)


def _one_dpo_step(data, tmp_path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from coig_writer.train.tiny import build_tiny_model

    tiny = build_tiny_model(tmp_path / "tiny")
    ds = datasets.load_dataset("json", data_files=str(data), split="train",
                               cache_dir=str(tmp_path / "hf"))
    model = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    args = DPOConfig(output_dir=str(tmp_path / "dpo"), max_steps=1, per_device_train_batch_size=2,
                     gradient_accumulation_steps=1, learning_rate=1e-3, max_length=256,
                     report_to=[], save_strategy="no", logging_steps=1, bf16=False,
                     use_cpu=True, seed=0)
    trainer = DPOTrainer(model=model, args=args, train_dataset=ds,
                         processing_class=AutoTokenizer.from_pretrained(tiny))
    out = trainer.train()
    assert out.global_step == 1 and out.training_loss == pytest.approx(0.6931, abs=0.05)
    moved = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
    assert moved  # the step changed the weights
