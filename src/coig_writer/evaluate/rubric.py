"""Rubric (WritingBench) statistics: a prompt's score is the mean of its criteria scores (1-10);
per-model means with bootstrap CIs over prompts, breakdowns by language, domain, subdomain and
criterion, and paired comparisons (paired bootstrap CI of the mean difference, Wilcoxon
signed-rank p), also on WritingBench's 0-100 scale (x10)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict
from typing import Any

import numpy as np

from ..records import EvalPrompt, RubricScore
from . import stats as st


def prompt_scores(scores: list[RubricScore]) -> dict[str, dict[str, float]]:
    """model -> prompt -> mean criterion score."""
    acc: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in scores:
        acc[(r.model, r.prompt_id)].append(r.score)
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for (m, pid), v in acc.items():
        out[m][pid] = float(np.mean(v))
    return out


def _group_means(models: list[str], per: dict[str, dict[str, float]], groups: dict[str, list[str]],
                 rounds: int, seed: int) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for g, pids in sorted(groups.items()):
        row = {}
        for m in models:
            v = [per.get(m, {})[p] for p in pids if p in per.get(m, {})]
            if v:
                mean, lo, hi = st.mean_ci(v, rounds, seed)
                row[m] = {"n": len(v), "mean": mean, "ci": [lo, hi]}
        if row:
            rows[g] = row
    return rows


def rubric_section(scores: list[RubricScore], prompts: dict[str, EvalPrompt],
                   models: list[str], rounds: int = 1000, seed: int = 0) -> dict[str, Any]:
    per = prompt_scores(scores)
    models = [m for m in models if m in per]
    overall = {}
    for m in models:
        v = list(per[m].values())
        mean, lo, hi = st.mean_ci(v, rounds, seed)
        overall[m] = {"n": len(v), "mean": mean, "ci": [lo, hi], "mean_100": 10 * mean,
                      "ci_100": [10 * lo, 10 * hi]}
    all_ids = sorted({pid for m in models for pid in per[m]})

    def by(attr: str) -> dict[str, list[str]]:
        g: dict[str, list[str]] = defaultdict(list)
        for pid in all_ids:
            if pid in prompts:
                g[str(getattr(prompts[pid], attr) or "(none)")].append(pid)
        return g

    crit: dict[tuple[str, str], list[float]] = defaultdict(list)
    names = Counter((r.criterion_name, r.prompt_id) for r in scores)
    shared = Counter(n for n, _ in names)
    for r in scores:  # criterion names shared by 3+ prompts, else the criterion's position
        key = r.criterion_name if shared[r.criterion_name] >= 3 else f"criterion {r.criterion + 1}"
        crit[(key, r.model)].append(r.score)
    by_criterion = {}
    for (key, m), v in sorted(crit.items()):
        mean, lo, hi = st.mean_ci(v, rounds, seed)
        by_criterion.setdefault(key, {})[m] = {"n": len(v), "mean": mean, "ci": [lo, hi]}
    paired = []
    for i, a in enumerate(models):
        for b in models[i + 1:]:
            common = sorted(set(per[a]) & set(per[b]))
            if common:
                c = st.paired_comparison([per[a][p] for p in common], [per[b][p] for p in common],
                                         rounds, seed)
                d = asdict(c)
                d.update(a=a, b=b, mean_diff_100=10 * c.mean_diff,
                         ci_100=[10 * c.ci_low, 10 * c.ci_high])
                paired.append(d)
    return {"models": models, "judges": sorted({r.judge for r in scores}),
            "templates": sorted({r.template_hash for r in scores if r.template_hash}),
            "n_scores": len(scores), "overall": overall,
            "by_language": _group_means(models, per, by("lang"), rounds, seed),
            "by_domain": _group_means(models, per, by("domain"), rounds, seed),
            "by_subdomain": _group_means(models, per, by("subdomain"), rounds, seed),
            "by_criterion": by_criterion, "paired": paired}
