"""Win-rate statistics over pairwise outcomes: matrices, bootstrap CIs, sign tests,
Bradley-Terry ratings, length-controlled win rates, agreement and correlations.

Outcomes are stored in a tensor S[p, i, j]: the score of model i against model j on prompt p
(1 win, 0.5 tie, 0 loss; the mean when several judges or raters compared them), NaN when not
compared. S[p, j, i] = 1 - S[p, i, j].
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats


@dataclass(frozen=True)
class Outcome:
    prompt_id: str
    a: str
    b: str
    score: float  # for a against b: 1 win, 0.5 tie, 0 loss


def outcomes_from_ranking(prompt_id: str, ranks: Mapping[str, float]) -> list[Outcome]:
    """Pairwise outcomes from one ranking (model -> rank, 1 is best; equal ranks tie)."""
    models = sorted(ranks)
    out = []
    for i, a in enumerate(models):
        for b in models[i + 1:]:
            s = 0.5 if ranks[a] == ranks[b] else float(ranks[a] < ranks[b])
            out.append(Outcome(prompt_id, a, b, s))
    return out


@dataclass
class ScoreTensor:
    prompts: list[str]
    models: list[str]
    S: np.ndarray  # (P, K, K)

    @classmethod
    def build(cls, outcomes: Iterable[Outcome], models: Sequence[str] | None = None
              ) -> ScoreTensor:
        acc: dict[tuple[str, str, str], list[float]] = defaultdict(list)
        for o in outcomes:
            acc[(o.prompt_id, o.a, o.b)].append(o.score)
            acc[(o.prompt_id, o.b, o.a)].append(1 - o.score)
        prompts = sorted({k[0] for k in acc})
        models = list(models) if models else sorted({k[1] for k in acc})
        pi = {p: n for n, p in enumerate(prompts)}
        mi = {m: n for n, m in enumerate(models)}
        S = np.full((len(prompts), len(models), len(models)), np.nan)
        for (p, a, b), scores in acc.items():
            if a in mi and b in mi:
                S[pi[p], mi[a], mi[b]] = float(np.mean(scores))
        return cls(prompts, models, S)

    def subset(self, prompt_ids: Iterable[str]) -> ScoreTensor:
        keep = set(prompt_ids)
        idx = [n for n, p in enumerate(self.prompts) if p in keep]
        return ScoreTensor([self.prompts[n] for n in idx], self.models, self.S[idx])


def _nanmean(x: np.ndarray, axis: int) -> np.ndarray:
    n = np.sum(~np.isnan(x), axis=axis)
    total = np.nansum(x, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def win_rates(t: ScoreTensor) -> np.ndarray:
    """M[i, j]: share of prompts where i beat j, ties counting half."""
    return _nanmean(t.S, axis=0)


def bootstrap_ci(t: ScoreTensor, rounds: int = 1000, seed: int = 0, alpha: float = 0.05
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Percentile CIs of the win-rate matrix, resampling prompts with replacement."""
    rng = np.random.default_rng(seed)
    P = len(t.prompts)
    boots = np.empty((rounds, *t.S.shape[1:]))
    for r in range(rounds):
        boots[r] = _nanmean(t.S[rng.integers(0, P, P)], axis=0)
    with warnings.catch_warnings():  # the diagonal and uncompared pairs are all-NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        lo = np.nanpercentile(boots, 100 * alpha / 2, axis=0)
        hi = np.nanpercentile(boots, 100 * (1 - alpha / 2), axis=0)
    return lo, hi


def sign_test(t: ScoreTensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact two-sided binomial (sign) test per pair, ties dropped.
    Returns (wins, losses, p-values)."""
    K = len(t.models)
    wins = np.sum(t.S > 0.5, axis=0)
    losses = np.sum(t.S < 0.5, axis=0)
    p = np.full((K, K), np.nan)
    for i in range(K):
        for j in range(K):
            n = int(wins[i, j] + losses[i, j])
            if i != j and n:
                p[i, j] = stats.binomtest(int(wins[i, j]), n, 0.5).pvalue
    return wins, losses, p


def bt_fit(W: np.ndarray, base: int = 0, l2: float = 0.0, iters: int = 100) -> np.ndarray:
    """Bradley-Terry log-strengths (model `base` fixed at 0) maximizing
    sum W[i, j] log sigmoid(t_i - t_j) - l2 |t|^2 by Newton's method (the log-likelihood is
    concave; a few iterations instead of Hunter's MM's hundreds)."""
    K = W.shape[0]
    free = np.array([k for k in range(K) if k != base], dtype=int)
    N = W + W.T
    t = np.zeros(K)
    if not len(free):
        return t
    for _ in range(iters):
        s = 1 / (1 + np.exp(-(t[:, None] - t[None, :])))
        g = np.sum(W - N * s, axis=1) - 2 * l2 * t
        v = N * s * (1 - s)
        H = v - np.diag(v.sum(axis=1)) - 2 * l2 * np.eye(K)
        step = np.linalg.lstsq(H[np.ix_(free, free)], -g[free], rcond=None)[0]
        t[free] = np.clip(t[free] + step, -30, 30)
        if np.max(np.abs(step)) < 1e-10:
            break
    return t


def bradley_terry(t: ScoreTensor, prior: float = 0.1, iters: int = 100) -> np.ndarray:
    """Bradley-Terry log-strengths (mean 0); ties count half a win each way; `prior` virtual
    ties per compared pair keep unbeaten models finite."""
    W = np.nansum(t.S, axis=0)  # W[i, j]: wins of i over j
    compared = (W + W.T) > 0
    theta = bt_fit(W + prior / 2 * compared, 0, iters=iters)
    return theta - theta.mean()


def bradley_terry_ci(t: ScoreTensor, rounds: int = 1000, seed: int = 0, alpha: float = 0.05
                     ) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    P = len(t.prompts)
    boots = np.array([bradley_terry(ScoreTensor(t.prompts, t.models,
                                                t.S[rng.integers(0, P, P)]))
                      for _ in range(rounds)])
    return (np.percentile(boots, 100 * alpha / 2, axis=0),
            np.percentile(boots, 100 * (1 - alpha / 2), axis=0))


def _logistic_loss(beta: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    """Log-loss of sigmoid(b0 + b1 x) against fractional targets y, lightly L2-regularized."""
    z = beta[0] + beta[1] * x
    return float(np.sum(np.logaddexp(0, z) - y * z) + 1e-3 * beta @ beta)


def length_controlled(t: ScoreTensor, lengths: np.ndarray) -> np.ndarray:
    """Length-controlled win rates: per pair, fit P(i beats j) = sigmoid(b0 + b1 * x) with
    x = tanh(dlen / sd(dlen)) on the user's own outcomes; report sigmoid(b0), the predicted
    win rate at equal lengths. `lengths[p, k]`: answer length of model k on prompt p."""
    K = len(t.models)
    diffs = lengths[:, :, None] - lengths[:, None, :]
    valid = ~np.isnan(t.S) & ~np.isnan(diffs)
    sd = float(np.std(diffs[valid])) or 1.0
    out = np.full((K, K), np.nan)
    for i in range(K):
        for j in range(i + 1, K):
            m = valid[:, i, j]
            if m.sum() < 2:
                continue
            y, x = t.S[m, i, j], np.tanh(diffs[m, i, j] / sd)
            b0 = optimize.minimize(_logistic_loss, np.zeros(2), args=(x, y), method="BFGS").x[0]
            out[i, j] = 1 / (1 + math.exp(-b0))
            out[j, i] = 1 - out[i, j]
    return out


@dataclass
class Correlation:
    n: int
    pearson: float
    pearson_ci: tuple[float, float]
    pearson_p: float
    spearman: float
    spearman_ci: tuple[float, float]
    spearman_p: float


def _fisher_ci(r: float, n: int, se_scale: float = 1.0, alpha: float = 0.05
               ) -> tuple[float, float]:
    if n <= 3 or abs(r) >= 1:
        return (float("nan"), float("nan"))
    z, se = math.atanh(r), se_scale / math.sqrt(n - 3)
    q = stats.norm.ppf(1 - alpha / 2)
    return (math.tanh(z - q * se), math.tanh(z + q * se))


def correlation(x: Sequence[float], y: Sequence[float]) -> Correlation:
    """Pearson and Spearman correlation with 95% CIs (Fisher z; Fieller's 1.06 for Spearman)."""
    n = len(x)
    if n < 3:
        raise ValueError("correlation needs at least 3 points")
    pr = stats.pearsonr(x, y)
    sr = stats.spearmanr(x, y)
    return Correlation(n, float(pr.statistic), _fisher_ci(float(pr.statistic), n),
                       float(pr.pvalue), float(sr.statistic),
                       _fisher_ci(float(sr.statistic), n, math.sqrt(1.06)), float(sr.pvalue))


# -- means and paired comparisons (rubric scores) ------------------------------------------------
def mean_ci(x: Sequence[float], rounds: int = 1000, seed: int = 0, alpha: float = 0.05
            ) -> tuple[float, float, float]:
    """Mean and percentile bootstrap CI over the items (prompts)."""
    a = np.asarray(x, dtype=float)
    if a.size == 0:
        return (float("nan"),) * 3  # type: ignore[return-value]
    rng = np.random.default_rng(seed)
    boots = a[rng.integers(0, a.size, (rounds, a.size))].mean(axis=1)
    return (float(a.mean()), float(np.percentile(boots, 100 * alpha / 2)),
            float(np.percentile(boots, 100 * (1 - alpha / 2))))


@dataclass
class Paired:
    n: int
    mean_diff: float
    ci_low: float
    ci_high: float
    wilcoxon_stat: float
    wilcoxon_p: float
    wins: int
    losses: int
    ties: int


def paired_comparison(a: Sequence[float], b: Sequence[float], rounds: int = 1000, seed: int = 0,
                      alpha: float = 0.05) -> Paired:
    """Mean of a - b over paired items with a paired bootstrap CI (items resampled together)
    and the Wilcoxon signed-rank test (scipy, zero differences dropped; p=1 when all tie)."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if d.size == 0:
        raise ValueError("paired comparison needs at least one shared item")
    mean, lo, hi = mean_ci(d, rounds, seed, alpha)
    if np.any(d != 0):
        w = stats.wilcoxon(d)
        stat, p = float(w.statistic), float(w.pvalue)
    else:
        stat, p = 0.0, 1.0
    return Paired(int(d.size), mean, lo, hi, stat, p, int(np.sum(d > 0)), int(np.sum(d < 0)),
                  int(np.sum(d == 0)))


def connected(t: ScoreTensor) -> list[list[str]]:
    """Groups of models linked by comparisons; more than one group means scores across groups
    (Bradley-Terry, Arena scores) are not comparable."""
    from scipy.sparse.csgraph import connected_components

    K = len(t.models)
    adj = (np.sum(~np.isnan(t.S), axis=0) > 0).astype(int) if len(t.prompts) else \
        np.zeros((K, K), int)
    n, labels = connected_components(adj, directed=False)
    return [[m for m, lab in zip(t.models, labels, strict=True) if lab == g] for g in range(n)]


def format_p(p: float | None) -> str:
    """p-values in full: scientific notation below 1e-4 (1.2e-12), never "0"."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "–"
    if p == 0:
        return "<1e-300"
    return f"{p:.1e}" if p < 1e-4 else f"{p:.3g}"
