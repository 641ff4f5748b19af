"""Arena-Hard scoring of pairwise judgments: five-level verdicts in both orders become battles
(A>>B = 3 wins, A>B = 1 win, A=B = a tie worth 0.5), a Bradley-Terry model is fitted by
weighted logistic regression, and each model's score is its predicted win rate (%) against a
named baseline (the baseline scores 50). CIs resample prompts with replacement."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..records import Judgment
from .stats import bt_fit

WEIGHT = {"A>>B": (3, 1.0), "A>B": (1, 1.0), "A=B": (1, 0.5), "B>A": (1, 0.0), "B>>A": (3, 0.0)}


def battles(judgments: Iterable[Judgment], models: Sequence[str]
            ) -> tuple[list[str], np.ndarray]:
    """(prompt ids, W[p, i, j]): battle weight won by model i over model j on prompt p (a tie
    gives each side half)."""
    idx = {m: n for n, m in enumerate(models)}
    acc: dict[str, np.ndarray] = {}
    for j in judgments:
        if j.kind != "pair" or j.winner is None:
            continue
        a, b = j.models
        if a not in idx or b not in idx:
            continue
        v = j.verdict or {a: "A>B", b: "B>A"}.get(j.winner, "A=B")
        n, y = WEIGHT[v]
        W = acc.setdefault(j.prompt_id, np.zeros((len(models), len(models))))
        W[idx[a], idx[b]] += n * y
        W[idx[b], idx[a]] += n * (1 - y)
    prompts = sorted(acc)
    K = len(models)
    return prompts, (np.stack([acc[p] for p in prompts]) if prompts else np.zeros((0, K, K)))


def fit(W: np.ndarray, base: int, l2: float = 1e-6) -> np.ndarray:
    """Log-strengths (base fixed at 0); the tiny ridge keeps an unbeaten model finite."""
    return bt_fit(W, base, l2)


def arena_scores(judgments: Iterable[Judgment], models: Sequence[str], baseline: str,
                 rounds: int = 1000, seed: int = 0, alpha: float = 0.05) -> dict[str, Any]:
    """Score (win rate % vs `baseline`, 50 for the baseline) with bootstrap CIs per model."""
    models, judgments = list(models), list(judgments)
    if baseline not in models:
        raise ValueError(f"baseline {baseline!r} has no judged pairs (models: {models})")
    prompts, W = battles(judgments, models)
    if not prompts:
        raise ValueError("no pairwise verdicts for Arena-Hard scoring")
    base = models.index(baseline)

    def score(Wsum: np.ndarray) -> np.ndarray:
        t = fit(Wsum, base)
        return 100 / (1 + np.exp(-(t - t[base])))

    point = score(W.sum(axis=0))
    rng = np.random.default_rng(seed)
    P = len(prompts)
    boots = np.array([score(W[rng.integers(0, P, P)].sum(axis=0)) for _ in range(rounds)])
    lo = np.percentile(boots, 100 * alpha / 2, axis=0)
    hi = np.percentile(boots, 100 * (1 - alpha / 2), axis=0)
    vs_base = W[:, :, base].sum(axis=0) + W[:, base, :].sum(axis=0)
    return {"baseline": baseline, "models": models, "n_prompts": P, "rounds": rounds,
            "score": point.tolist(), "ci_low": lo.tolist(), "ci_high": hi.tolist(),
            "battles_vs_baseline": vs_base.tolist(),
            "verdicts": _verdict_counts(judgments)}


def _verdict_counts(judgments: Iterable[Judgment]) -> dict[str, int]:
    out = {v: 0 for v in WEIGHT}
    for j in judgments:
        if j.kind == "pair" and j.verdict in out:
            out[j.verdict] += 1
    return out
