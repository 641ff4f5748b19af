"""Judge bias, measured: position bias (verdicts that flip with the order, preference for the
first slot), length bias (win rate against length difference), agreement of pairwise verdicts
with rubric scores on the same pairs, and Cohen's kappa (bootstrap CI) against humans."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
from scipy import stats

from ..agreement import cohen_kappa
from ..records import Generation, Judgment, RubricScore
from .stats import Outcome, mean_ci


def position_bias(judgments: list[Judgment]) -> dict[str, Any] | None:
    """Among pairs judged in both orders: share whose winner flips with the order; over all
    decisive verdicts: share given to the answer shown first (binomial test against 50%)."""
    by_pair: dict[tuple[str, str, str, str], dict[tuple[str, ...], str]] = defaultdict(dict)
    first = second = 0
    for j in judgments:
        if j.kind != "pair" or j.winner is None:
            continue
        a, b = sorted(j.models)
        by_pair[(j.judge, j.prompt_id, a, b)][tuple(j.models)] = j.winner
        if j.winner == j.models[0]:
            first += 1
        elif j.winner == j.models[1]:
            second += 1
    both = [v for v in by_pair.values() if len(v) == 2]
    if not both and not first + second:
        return None
    flips = sum(1 for v in both if len(set(v.values())) > 1)
    decisive = first + second
    return {"pairs_both_orders": len(both),
            "inconsistent": flips, "inconsistent_rate": flips / len(both) if both else None,
            "decisive_verdicts": decisive, "first_position_wins": first,
            "first_position_rate": first / decisive if decisive else None,
            "first_position_p": stats.binomtest(first, decisive).pvalue if decisive else None}


def length_bias(outcomes: list[Outcome], gens: dict[tuple[str, str], Generation],
                bins: int = 5) -> dict[str, Any] | None:
    """Win rate of the longer answer, and win rate by binned relative length difference
    d = (len_a - len_b) / (len_a + len_b), with the Spearman correlation between the two and
    the least-squares slope of the outcome on d (win-rate change per unit of d; +0.5 means an
    answer twice as long, d = 1/3, wins about 17 points more often)."""
    rows = []
    for o in outcomes:
        ga, gb = gens.get((o.a, o.prompt_id)), gens.get((o.b, o.prompt_id))
        if ga is None or gb is None or not (len(ga.answer) + len(gb.answer)):
            continue
        d = (len(ga.answer) - len(gb.answer)) / (len(ga.answer) + len(gb.answer))
        rows += [(d, o.score), (-d, 1 - o.score)]  # both views, so the table is symmetric
    if not rows:
        return None
    d, s = np.array(rows).T
    longer = s[d > 0]
    mean, lo, hi = mean_ci(longer) if longer.size else (float("nan"),) * 3
    edges = np.unique(np.quantile(d, np.linspace(0, 1, bins + 1)))
    table = []
    for n, (x0, x1) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        m = (d >= x0) & ((d <= x1) if n == len(edges) - 2 else (d < x1))
        if m.any():
            table.append({"from": float(x0), "to": float(x1), "n": int(m.sum()),
                          "win_rate": float(s[m].mean())})
    rho = stats.spearmanr(d, s) if np.ptp(d) > 0 and np.ptp(s) > 0 else None
    fit = stats.linregress(d, s) if np.ptp(d) > 0 else None
    return {"n_pairs": len(rows) // 2, "longer_win_rate": mean, "longer_ci": [lo, hi],
            "slope": float(fit.slope) if fit is not None else None,
            "slope_p": float(fit.pvalue) if fit is not None and np.ptp(s) > 0 else None,
            "n_longer": int(longer.size), "bins": table,
            "spearman": float(rho.statistic) if rho is not None else None,
            "spearman_p": float(rho.pvalue) if rho is not None else None}


def kappa_ci(a: Sequence[Hashable], b: Sequence[Hashable], rounds: int = 1000, seed: int = 0,
             alpha: float = 0.05) -> dict[str, Any]:
    """Cohen's kappa with a percentile bootstrap CI over the decisions."""
    n = len(a)
    k = cohen_kappa(a, b)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(rounds):
        idx = rng.integers(0, n, n)
        boots.append(cohen_kappa([a[i] for i in idx], [b[i] for i in idx]))
    agree = sum(x == y for x, y in zip(a, b, strict=True)) / n
    return {"n": n, "percent_agreement": agree, "cohen_kappa": k,
            "kappa_ci": [float(np.percentile(boots, 100 * alpha / 2)),
                         float(np.percentile(boots, 100 * (1 - alpha / 2)))]}


def _label(s: float) -> str:
    return "a" if s > 0.5 else "b" if s < 0.5 else "tie"


def _index(outs: list[Outcome]) -> dict[tuple[str, str, str], float]:
    d: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for o in outs:
        x, y = sorted((o.a, o.b))
        d[(o.prompt_id, x, y)].append(o.score if o.a == x else 1 - o.score)
    return {k: float(np.mean(v)) for k, v in d.items()}


def agreement(a: list[Outcome], b: list[Outcome], rounds: int = 1000, seed: int = 0
              ) -> dict[str, Any] | None:
    """Agreement (A better / B better / tie) of two sources on the same (prompt, pair)."""
    ia, ib = _index(a), _index(b)
    common = sorted(set(ia) & set(ib))
    if not common:
        return None
    return kappa_ci([_label(ia[k]) for k in common], [_label(ib[k]) for k in common],
                    rounds, seed)


def rubric_outcomes(scores: list[RubricScore], judge: str | None = None) -> list[Outcome]:
    """Pairwise outcomes implied by rubric prompt scores (mean over criteria)."""
    per: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in scores:
        if judge is None or r.judge == judge:
            per[(r.prompt_id, r.model)].append(r.score)
    by_prompt: dict[str, dict[str, float]] = defaultdict(dict)
    for (pid, m), v in per.items():
        by_prompt[pid][m] = float(np.mean(v))
    out = []
    for pid, ms in by_prompt.items():
        names = sorted(ms)
        for i, x in enumerate(names):
            for y in names[i + 1:]:
                s = 0.5 if ms[x] == ms[y] else float(ms[x] > ms[y])
                out.append(Outcome(pid, x, y, s))
    return out
