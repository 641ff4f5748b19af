"""Rubric (WritingBench) statistics: a prompt's score is the mean of its criteria scores (1-10);
per-model means with bootstrap CIs over prompts, breakdowns by language, domain, subdomain and
criterion, and paired comparisons (paired bootstrap CI of the mean difference, Wilcoxon
signed-rank p), also on WritingBench's 0-100 scale (x10).

Beside them, WritingBench's own aggregation (its `calculate_scores.py`): the overall score pools
every criterion score of a model (sum / count, so a prompt that lost criteria to failed judge
calls weighs less), domain scores average prompt scores, and the requirement subsets (style,
format, length) give R (mean prompt score over the subset's prompts) and C (mean of the
subset's named criteria). With a judge ensemble every judge's scores are pooled, as WritingBench
pools repeated evaluations of a criterion."""

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
                   models: list[str], rounds: int = 1000, seed: int = 0,
                   answered: set[tuple[str, str]] | None = None) -> dict[str, Any]:
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
    judges = sorted({r.judge for r in scores})
    return {"models": models, "judges": judges,
            "writingbench": writingbench_section(scores, prompts, models, rounds, seed, answered),
            "by_judge": {j: writingbench_overall([r for r in scores if r.judge == j], models,
                                                 rounds, seed) for j in judges}
            if len(judges) > 1 else {},
            "templates": sorted({r.template_hash for r in scores if r.template_hash}),
            "n_scores": len(scores), "overall": overall,
            "by_language": _group_means(models, per, by("lang"), rounds, seed),
            "by_domain": _group_means(models, per, by("domain"), rounds, seed),
            "by_subdomain": _group_means(models, per, by("subdomain"), rounds, seed),
            "by_criterion": by_criterion, "paired": paired}


def writingbench_overall(scores: list[RubricScore], models: list[str], rounds: int = 1000,
                         seed: int = 0) -> dict[str, Any]:
    """Per model: WritingBench's overall (every criterion score pooled, sum / count, 1-10 and
    0-100) with a 95% CI resampling prompts (each prompt's scores stay together)."""
    acc: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in scores:
        acc[r.model][r.prompt_id].append(r.score)
    out = {}
    for m in models:
        if m not in acc:
            continue
        sums = np.array([sum(v) for v in acc[m].values()])
        counts = np.array([len(v) for v in acc[m].values()], dtype=float)
        idx = np.random.default_rng(seed).integers(0, len(sums), (rounds, len(sums)))
        boots = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
        lo, hi = float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))
        overall = float(sums.sum() / counts.sum())
        out[m] = {"overall": overall, "overall_100": 10 * overall, "ci": [lo, hi],
                  "ci_100": [10 * lo, 10 * hi], "criterion_scores": int(counts.sum()),
                  "prompts": len(sums)}
    return out


def missing_criteria(scores: list[RubricScore], prompts: dict[str, EvalPrompt],
                     models: list[str], answered: set[tuple[str, str]] | None = None
                     ) -> dict[str, dict[str, int]]:
    """Per model: prompts scored on fewer criteria than the prompt asks for (by any judge that
    scored the prompt), and the criterion scores missing. A prompt a judge scored for some model
    counts as asked of every model that answered it."""
    got: dict[tuple[str, str, str], set[int]] = defaultdict(set)
    judged: dict[str, set[str]] = defaultdict(set)
    for r in scores:
        got[(r.judge, r.model, r.prompt_id)].add(r.criterion)
        judged[r.judge].add(r.prompt_id)
    out = {m: {"prompts_short": 0, "criteria_missing": 0} for m in models}
    for judge, pids in judged.items():
        for pid in pids:
            asked = len(prompts[pid].criteria) if pid in prompts else 0
            for m in models:
                have = got.get((judge, m, pid))
                if have is None and (answered is None or (m, pid) not in answered):
                    continue
                short = max(0, asked - len(have or ()))
                if short:
                    out[m]["prompts_short"] += 1
                    out[m]["criteria_missing"] += short
    return out


def requirement_scores(scores: list[RubricScore], prompts: dict[str, EvalPrompt],
                       models: list[str]) -> dict[str, dict[str, Any]]:
    """WritingBench's requirement subsets: per requirement and model, R (mean prompt score over
    the subset's prompts) and C (mean over the subset's named criteria of each criterion's mean
    score); empty when the prompts carry no requirement tags."""
    per = prompt_scores(scores)
    crit: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for r in scores:
        crit[(r.model, r.prompt_id, r.criterion_name)].append(r.score)
    reqs = sorted({q for p in prompts.values() for q in p.requirements})
    out: dict[str, dict[str, Any]] = {}
    for q in reqs:
        tagged = {pid: p.requirements[q] for pid, p in prompts.items() if q in p.requirements}
        row = {}
        for m in models:
            r_vals = [per.get(m, {})[pid] for pid in tagged if pid in per.get(m, {})]
            c_vals = [float(np.mean(crit[(m, pid, name)])) for pid, names in tagged.items()
                      for name in names if (m, pid, name) in crit]
            if r_vals:
                row[m] = {"R": float(np.mean(r_vals)), "C": float(np.mean(c_vals)) if c_vals
                          else None, "prompts": len(r_vals), "criteria": len(c_vals)}
        if row:
            out[q] = {"prompts_in_subset": len(tagged), "models": row}
    return out


def writingbench_section(scores: list[RubricScore], prompts: dict[str, EvalPrompt],
                         models: list[str], rounds: int, seed: int,
                         answered: set[tuple[str, str]] | None = None) -> dict[str, Any]:
    return {"aggregation": "WritingBench calculate_scores.py: overall = pooled criterion mean "
                           "(sum / count); domains and requirement R = mean of prompt scores",
            "overall": writingbench_overall(scores, models, rounds, seed),
            "missing": missing_criteria(scores, prompts, models, answered),
            "requirements": requirement_scores(scores, prompts, models)}
