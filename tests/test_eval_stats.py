"""Statistics against hand-computed cases and scipy."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from coig_writer.agreement import cohen_kappa, krippendorff_alpha
from coig_writer.evaluate import stats as st
from coig_writer.evaluate.diversity import mattr, measure, mtld, tokens, ttr
from coig_writer.langid import detect_language


def tensor_abc() -> st.ScoreTensor:
    # 4 prompts. A vs B: win, win, tie, loss -> 0.625. A vs C: win x4. B vs C: loss, tie, -, -
    outs = [st.Outcome("p1", "A", "B", 1), st.Outcome("p2", "A", "B", 1),
            st.Outcome("p3", "A", "B", 0.5), st.Outcome("p4", "B", "A", 1)]
    outs += [st.Outcome(p, "A", "C", 1) for p in ("p1", "p2", "p3", "p4")]
    outs += [st.Outcome("p1", "C", "B", 1), st.Outcome("p2", "B", "C", 0.5)]
    return st.ScoreTensor.build(outs)


def test_win_rate_matrix_hand_computed():
    t = tensor_abc()
    assert t.models == ["A", "B", "C"]
    M = st.win_rates(t)
    assert M[0, 1] == pytest.approx(0.625) and M[1, 0] == pytest.approx(0.375)
    assert M[0, 2] == 1.0 and M[2, 0] == 0.0
    assert M[1, 2] == pytest.approx(0.25)  # (0 + 0.5) / 2
    assert np.isnan(M[0, 0])


def test_multiple_raters_average_and_rankings():
    outs = st.outcomes_from_ranking("p1", {"A": 1, "B": 2, "C": 2})
    assert {(o.a, o.b, o.score) for o in outs} == {("A", "B", 1.0), ("A", "C", 1.0),
                                                   ("B", "C", 0.5)}
    t = st.ScoreTensor.build([st.Outcome("p", "A", "B", 1), st.Outcome("p", "B", "A", 1),
                              st.Outcome("p", "A", "B", 1)])
    assert st.win_rates(t)[0, 1] == pytest.approx(2 / 3)


def test_bootstrap_ci_brackets_the_estimate_and_is_deterministic():
    rng = np.random.default_rng(1)
    outs = [st.Outcome(f"p{i}", "A", "B", float(rng.random() < 0.7)) for i in range(200)]
    t = st.ScoreTensor.build(outs)
    lo, hi = st.bootstrap_ci(t, rounds=1000, seed=3)
    m = st.win_rates(t)[0, 1]
    assert lo[0, 1] < m < hi[0, 1]
    se = math.sqrt(m * (1 - m) / 200)  # normal approximation of the same interval
    assert lo[0, 1] == pytest.approx(m - 1.96 * se, abs=0.02)
    assert hi[0, 1] == pytest.approx(m + 1.96 * se, abs=0.02)
    assert lo[1, 0] == pytest.approx(1 - hi[0, 1])
    lo2, _ = st.bootstrap_ci(t, rounds=1000, seed=3)
    assert np.array_equal(lo, lo2, equal_nan=True)


def test_sign_test_matches_scipy_binomtest():
    outs = [st.Outcome(f"p{i}", "A", "B", 1) for i in range(9)]
    outs += [st.Outcome(f"q{i}", "A", "B", 0) for i in range(3)]
    outs += [st.Outcome(f"r{i}", "A", "B", 0.5) for i in range(5)]  # ties are dropped
    wins, losses, p = st.sign_test(st.ScoreTensor.build(outs))
    assert (wins[0, 1], losses[0, 1]) == (9, 3)
    assert p[0, 1] == pytest.approx(sps.binomtest(9, 12, 0.5).pvalue)
    assert p[0, 1] == pytest.approx(0.146, abs=1e-3)  # 2 * P(X >= 9), X ~ Bin(12, 0.5)


def test_bradley_terry_recovers_two_player_odds():
    # A beats B 30 of 40 times: MLE strength ratio 3, log-strengths +-ln(3)/2
    outs = [st.Outcome(f"p{i}", "A", "B", float(i < 30)) for i in range(40)]
    bt = st.bradley_terry(st.ScoreTensor.build(outs), prior=0.0)
    assert bt[0] - bt[1] == pytest.approx(math.log(3), abs=1e-6)
    assert bt.sum() == pytest.approx(0, abs=1e-9)
    # an unbeaten model stays finite thanks to the prior, and ranks first
    t = tensor_abc()
    r = st.bradley_terry(t)
    assert np.all(np.isfinite(r)) and np.argmax(r) == 0
    lo, hi = st.bradley_terry_ci(t, rounds=200)
    assert np.all(lo <= r + 1e-9) and np.all(r - 1e-9 <= hi)


def lc_case(win_when_longer: int, win_when_shorter: int) -> tuple[st.ScoreTensor, np.ndarray]:
    """40 prompts: A is longer on 30 (wins `win_when_longer` of them), shorter on 10."""
    outs, lengths = [], []
    for i in range(40):
        longer = i < 30
        won = i < win_when_longer if longer else i - 30 < win_when_shorter
        outs.append(st.Outcome(f"p{i:02d}", "A", "B", float(won)))
        lengths.append([400 if longer else 200, 300])
    return st.ScoreTensor.build(outs), np.array(lengths, dtype=float)


def test_length_controlled_removes_a_pure_length_effect():
    # wins 80% when longer, 20% when shorter: raw 0.65, but no edge at equal length
    t, lengths = lc_case(24, 2)
    assert st.win_rates(t)[0, 1] == pytest.approx(0.65)
    lc = st.length_controlled(t, lengths)
    assert lc[0, 1] == pytest.approx(0.5, abs=0.01) and lc[1, 0] == pytest.approx(1 - lc[0, 1])
    # wins 90% when longer and 70% when shorter: a real edge survives the control
    t2, _ = lc_case(27, 7)
    lc2 = st.length_controlled(t2, lengths)
    expected = 1 / (1 + math.exp(-(math.log(9) + math.log(7 / 3)) / 2))
    assert lc2[0, 1] == pytest.approx(expected, abs=0.01)


def test_cohen_kappa_hand_computed():
    a = ["A", "A", "B", "B", "tie", "A"]
    b = ["A", "B", "B", "B", "tie", "A"]
    # po = 5/6; pe = (3/6*2/6) + (2/6*3/6) + (1/6*1/6) = 13/36
    assert cohen_kappa(a, b) == pytest.approx((5 / 6 - 13 / 36) / (1 - 13 / 36))
    assert cohen_kappa(a, a) == 1.0


def test_krippendorff_alpha_hand_computed():
    # units (a,a), (a,b), (b,b), (b,b): o_aa=2, o_ab=o_ba=1, o_bb=4; n_a=3, n_b=5, n=8
    # alpha = 1 - (n-1) * 2 / (2 * 3 * 5) = 1 - 14/30
    units = {1: ["a", "a"], 2: ["a", "b"], 3: ["b", "b"], 4: ["b", "b"], 5: ["a"]}
    assert krippendorff_alpha(units) == pytest.approx(1 - 14 / 30)
    assert krippendorff_alpha({1: ["x", "x", "x"], 2: ["y", "y"]}) == 1.0
    assert krippendorff_alpha({1: ["x"]}) is None


def test_correlation_matches_scipy():
    x, y = [0.678, 0.64, 0.62, 0.60, 0.593], [0.5, 0.36, 0.42, 0.5, 0.63]
    c = st.correlation(x, y)
    ref = sps.pearsonr(x, y)
    assert c.pearson == pytest.approx(ref.statistic) and c.pearson_p == pytest.approx(ref.pvalue)
    ci = ref.confidence_interval()
    assert c.pearson_ci == pytest.approx((ci.low, ci.high))
    assert c.spearman == pytest.approx(sps.spearmanr(x, y).statistic)
    assert c.spearman_ci[0] < c.spearman < c.spearman_ci[1]


def test_ttr_mattr_mtld_hand_computed():
    toks = list("abab")
    assert ttr(toks) == 0.5
    assert mattr(list("abcabc"), window=3) == 1.0
    assert mattr(list("aabb"), window=2) == pytest.approx((0.5 + 1 + 0.5) / 3)
    # MTLD: 'aaaa' -> each pass: TTR hits 0.5 <= 0.72 at the 2nd token: 2 factors, no rest
    assert mtld(list("aaaa")) == pytest.approx(2.0)
    # all distinct: TTR never falls, MTLD is the length
    assert mtld(list("abcdef")) == 6.0
    # forward 'aaabca': a, a (0.5 -> factor); a, b, c, a rest with TTR 0.75 -> partial
    # (1 - 0.75) / (1 - 0.72); backward 'acbaaa': a, c, b, a, a (0.6 -> factor); a rest (TTR 1)
    forward = 6 / (1 + 0.25 / 0.28)
    assert mtld(list("aaabca")) == pytest.approx((forward + 6) / 2)


def test_tokenizers_and_language_detection():
    assert tokens("The cat's hat, the CAT!", "en") == ["the", "cat's", "hat", "the", "cat"]
    zh = tokens("我们今天去公园散步，天气很好。", "zh")
    assert "公园" in zh and "，" not in zh and len(zh) < 14
    assert tokens("春风，春雨", "zh", "char") == ["春", "风", "春", "雨"]
    d = measure("春风又绿江南岸，明月何时照我还。春风", "zh", "char")
    assert d.tokens == 16 and d.ttr == pytest.approx(14 / 16)
    assert detect_language("这是一段中文 with a few English words") == "zh"
    assert detect_language("This is English with 一点 Chinese") == "en"
    assert detect_language("12345") is None
