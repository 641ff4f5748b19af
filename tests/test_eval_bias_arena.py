"""Paired statistics against scipy on a fixed table, Arena-Hard scoring, judge-bias figures,
kappa CIs, p-value formatting, the disconnected-graph warning and the empty-store message."""

import warnings

import numpy as np
import pytest
from scipy import stats as sps

from coig_writer.evaluate import stats as st
from coig_writer.evaluate.analysis import analyze
from coig_writer.evaluate.arena import arena_scores
from coig_writer.evaluate.bias import kappa_ci, length_bias, position_bias
from coig_writer.evaluate.judge import parse_pair, parse_rubric
from coig_writer.records import EvalPrompt, Generation, Judgment

# 12 prompts, two models' rubric prompt scores (fixed table)
A = [7.2, 6.8, 8.0, 5.4, 7.6, 6.2, 8.4, 7.0, 6.6, 7.8, 5.8, 7.4]
B = [6.4, 7.0, 7.2, 5.0, 6.8, 6.0, 7.6, 7.4, 5.2, 7.0, 5.6, 6.2]


def test_paired_comparison_matches_scipy_and_numpy():
    c = st.paired_comparison(A, B, rounds=2000, seed=3)
    d = np.subtract(A, B)
    w = sps.wilcoxon(A, B)
    assert c.n == 12 and c.mean_diff == pytest.approx(d.mean())
    assert c.wilcoxon_stat == pytest.approx(w.statistic) and c.wilcoxon_p == pytest.approx(w.pvalue)
    assert (c.wins, c.losses, c.ties) == (10, 2, 0)
    rng = np.random.default_rng(3)
    boots = d[rng.integers(0, 12, (2000, 12))].mean(axis=1)
    assert (c.ci_low, c.ci_high) == pytest.approx((np.percentile(boots, 2.5),
                                                   np.percentile(boots, 97.5)))
    assert c.ci_low < c.mean_diff < c.ci_high
    assert st.paired_comparison([5, 5], [5, 5]).wilcoxon_p == 1.0


def test_format_p_keeps_small_values():
    assert st.format_p(1.23e-12) == "1.2e-12"
    assert st.format_p(0.04321) == "0.0432"
    assert st.format_p(None) == "–" and st.format_p(0.0) == "<1e-300"


def pair(pid, a, b, verdict, judge="j"):
    winner = {"A>>B": a, "A>B": a, "A=B": "tie", "B>A": b, "B>>A": b}[verdict]
    return Judgment(prompt_id=pid, kind="pair", models=[a, b], winner=winner, judge=judge,
                    verdict=verdict)


def test_arena_scores_five_levels_and_baseline_at_50():
    js = [pair("p1", "x", "base", "A>>B"), pair("p1", "base", "x", "B>A"),  # x: 3 + 1 wins
          pair("p2", "x", "base", "A=B"), pair("p2", "base", "x", "A>B"),  # 0.5/0.5 and 1 loss
          pair("p3", "x", "base", "B>>A"), pair("p3", "base", "x", "A=B")]  # 3 losses, tie
    r = arena_scores(js, ["x", "base"], "base", rounds=200)
    x, base = r["rows"]
    # x's battle weight: wins 3 + 1 + 0.5 + 0.5 = 5 of 3 + 1 + 1 + 1 + 3 + 1 = 10 battles
    assert x["score"] == pytest.approx(50.0, abs=1e-9) and base["score"] == 50
    assert x["battles"] == 10 and x["prompts"] == 3 and base["model"] == "base"
    js[4] = pair("p3", "x", "base", "A>B")  # x: 4 + 0.5 + 1 + 0.5 = 6 of 8 battles
    r = arena_scores(js, ["x", "base"], "base", rounds=200)
    x = r["rows"][0]
    assert x["score"] == pytest.approx(100 * 6 / 8)
    assert x["ci95_prompts"][0] <= x["score"] <= x["ci95_prompts"][1] and r["rounds"] == 200
    assert x["ci90_battles"][0] <= x["score"] <= x["ci90_battles"][1]
    # verdicts between x and y do not move x; y, judged in one order per prompt, has no score
    js += [pair("p1", "y", "base", "A>B"), pair("p2", "base", "y", "A>>B"),
           pair("p1", "x", "y", "A>B"), pair("p3", "y", "x", "A=B")]
    r = arena_scores(js, ["x", "y", "base"], "base", rounds=50)
    x, y, _ = r["rows"]
    assert x["score"] == pytest.approx(75.0)
    assert y["score"] is None and y["lone_orders"] == 2 and "one order only" in y["note"]
    assert y["lone_order_prompts"] == ["p1 (j)", "p2 (j)"]
    with pytest.raises(ValueError, match="baseline"):
        arena_scores(js, ["x"], "gemini")


def test_parsers_require_the_verdict_and_the_score():
    with pytest.raises(ValueError, match="overall"):
        parse_pair({"winner": "A"})
    dims, v5, _ = parse_pair({"overall": "B", "verdict": "A>>B"})  # contradiction: trust overall
    assert dims["overall"] == "B" and v5 == "B>A"
    assert parse_pair({"verdict": "B>>A"})[1] == "B>>A"
    with pytest.raises(ValueError, match="score"):
        parse_rubric({"reason": "x"})
    with pytest.raises(ValueError, match="1 to 10"):
        parse_rubric({"score": 11})
    assert parse_rubric({"score": "7"}) == (7.0, "")


def test_position_and_length_bias():
    js = [pair("p1", "x", "y", "A>B"), pair("p1", "y", "x", "B>A"),  # consistent: x
          pair("p2", "x", "y", "A>B"), pair("p2", "y", "x", "A>B"),  # flips: A both times
          pair("p3", "x", "y", "A=B"), pair("p3", "y", "x", "A=B"),
          pair("p4", "x", "y", "B>A")]
    b = position_bias(js)
    assert b["pairs_both_orders"] == 3 and b["inconsistent"] == 1
    assert b["first_position_wins"] == 3 and b["decisive_verdicts"] == 5
    assert b["first_position_p"] == pytest.approx(sps.binomtest(3, 5).pvalue)
    gens = {(m, f"p{i}"): Generation(model=m, prompt_id=f"p{i}", raw="", answer="w" * n)
            for i in range(1, 9) for m, n in (("x", 100), ("y", 50))}
    outs = [st.Outcome(f"p{i}", "x", "y", 1.0 if i <= 6 else 0.0) for i in range(1, 9)]
    lb = length_bias(outs, gens)
    assert lb["n_pairs"] == 8 and lb["longer_win_rate"] == 0.75


def test_kappa_ci():
    a = ["a", "b", "a", "tie", "a", "b", "b", "a"] * 3
    b = ["a", "b", "b", "tie", "a", "b", "a", "a"] * 3
    k = kappa_ci(a, b, rounds=300)
    assert k["n"] == 24 and k["kappa_ci"][0] < k["cohen_kappa"] < k["kappa_ci"][1]


def test_disconnected_graph_warning_and_empty_store(store):
    with pytest.raises(ValueError, match="no evaluation prompts"):
        analyze(store)
    for i in range(4):
        store.evaluation.put_eval_prompt(EvalPrompt(id=f"p{i}", lang="en", prompt="p"))
    with pytest.raises(ValueError, match="no answers"):
        analyze(store)
    for i in range(4):
        for m in ("a", "b", "c", "d"):
            store.evaluation.put_generation(Generation(model=m, prompt_id=f"p{i}", raw="t", answer="t" * 9))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy warnings on the way to the message
        with pytest.raises(ValueError, match="eval judge"):
            analyze(store)
    for i in range(4):
        store.evaluation.put_judgment(pair(f"p{i}", "a", "b", "A>B"))
        store.evaluation.put_judgment(pair(f"p{i}", "c", "d", "B>A"))
    r = analyze(store, models=["d", "c", "b", "a"], rounds=50)
    assert r["overall"]["models"] == ["d", "c", "b", "a"]  # the user's order
    assert r["overall"]["connected_groups"] == [["d", "c"], ["b", "a"]]
    codes = [w["code"] for w in r["warnings"]]
    assert "disconnected" in codes and "lost_verdicts" in codes  # each pair in one order
