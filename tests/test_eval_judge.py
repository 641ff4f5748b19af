"""Generation and the LLM judge on the real embedded 0.5B model."""

import asyncio

import pytest

from coig_writer.evaluate.analysis import analyze
from coig_writer.evaluate.generate import generate
from coig_writer.evaluate.judge import Judge, pair_outcomes
from coig_writer.evaluate.prompt_sets import add_prompt_set
from coig_writer.llm import CachedBackend
from coig_writer.llm.engine import LocalBackend
from coig_writer.prompts import load_template

pytestmark = pytest.mark.slow


def test_generate_judge_both_orders_and_rank(store, small_model):
    add_prompt_set(store, "bundled-zh")
    prompts = store.evaluation.eval_prompts(lang="zh")[:2]
    llm = CachedBackend(LocalBackend(small_model, name="qwen2.5-coder-0.5b", n_ctx=4096), store)
    for name, temp in (("cold", 0.0), ("hot", 1.0)):
        counts = asyncio.run(generate(store, llm, name, prompts, temperature=temp, max_tokens=60))
        assert {k: counts[k] for k in ("done", "skipped", "errors")} == {
            "done": 2, "skipped": 0, "errors": {}}
    gens = store.evaluation.generations()
    assert len(gens) == 4 and all(g.answer and g.params["max_tokens"] == 60 for g in gens)

    judge = Judge(store, llm, "qwen-0.5b-judge", max_tokens=120)
    made = asyncio.run(judge.run(prompts, ["cold", "hot"], "pairwise"))
    pairs = store.evaluation.judgments(source="judge")
    assert made == len(pairs) == 4 - len(judge.failures) and made >= 2
    h = load_template("judge_pairwise", "zh").sha256
    for j in pairs:
        assert j.judge == "qwen-0.5b-judge" and j.template_hash == h and j.cache_keys
        assert j.winner in ("cold", "hot", "tie")
    orders = {(j.prompt_id, tuple(j.models)) for j in pairs}
    assert len(orders) == len(pairs)  # each order judged once
    outcomes, counts = pair_outcomes(pairs)
    assert sum(counts.values()) == len(outcomes) >= 1

    made_rank = asyncio.run(judge.run(prompts, ["cold", "hot"], "ranking"))
    ranks = [j for j in store.evaluation.judgments() if j.kind == "rank"]
    assert made_rank == len(ranks) >= 1, judge.failures
    assert all(sorted(j.ranks.values()) == [1.0, 2.0] for j in ranks)

    # a rerun sends nothing for what is done; only failed tasks would be asked again
    misses = llm.misses
    assert asyncio.run(generate(store, llm, "cold", prompts))["skipped"] == 2
    pending = judge.tasks(prompts, ["cold", "hot"], "pairwise")
    assert {t.key for t in pending} <= set(judge.failures)
    if not pending:
        assert asyncio.run(judge.run(prompts, ["cold", "hot"], "pairwise")) == 0
    assert llm.misses == misses

    result = analyze(store, rounds=50)
    assert result["overall"]["models"] == ["cold", "hot"]
    assert result["judges"] == ["qwen-0.5b-judge"]
