"""Judge ensembles: each judge's figures on its own (pair consistency, slot preference, length
bias, win rates, Arena-Hard scores, WritingBench overall) and how far the judges agree
(Cohen's kappa with a bootstrap CI on the same prompt and model pair, for every pair of judges).
The pooled figures elsewhere in the report average the judges' verdicts on each prompt."""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

import numpy as np

from ..records import Generation, Judgment, RubricScore
from . import stats as st
from .arena import arena_scores
from .bias import agreement, length_bias, position_bias, rubric_outcomes
from .judge import pair_outcomes, rank_outcomes
from .rubric import writingbench_overall


def _by_judge(records: list[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = defaultdict(list)
    for r in records:
        out[r.judge].append(r)
    return dict(out)


def judge_outcomes(judgments: list[Judgment], rubric: list[RubricScore]
                   ) -> dict[str, list[st.Outcome]]:
    """Per judge: its pairwise/ranking outcomes, else those implied by its rubric scores."""
    out = {j: pair_outcomes(js)[0] + rank_outcomes(js) for j, js in _by_judge(judgments).items()}
    for j, rs in _by_judge(rubric).items():
        if not out.get(j):
            out[j] = rubric_outcomes(rs)
    return out


def unjudged_pairs(pairs: list[Judgment], answered: set[tuple[str, str]]) -> int:
    """Prompt and model pairs with no verdict in either order although the judge compared that
    pair elsewhere and judged that prompt, and both models answered it (both calls failed)."""
    seen = {(j.prompt_id, *sorted(j.models)) for j in pairs}
    model_pairs = {tuple(sorted(j.models)) for j in pairs}
    prompts = {j.prompt_id for j in pairs}
    return sum(1 for p in prompts for a, b in model_pairs
               if (p, a, b) not in seen and (a, p) in answered and (b, p) in answered)


def per_judge(judgments: list[Judgment], rubric: list[RubricScore], models: list[str],
              gens: dict[tuple[str, str], Generation], baseline: str | None, rounds: int,
              seed: int) -> dict[str, dict[str, Any]]:
    """Every judge's own figures, keyed by its name."""
    pj, rj = _by_judge(judgments), _by_judge(rubric)
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(set(pj) | set(rj)):
        js, rs = pj.get(name, []), rj.get(name, [])
        pairs = [j for j in js if j.kind == "pair"]
        d: dict[str, Any] = {"judge": name, "verdicts": len(js), "rubric_scores": len(rs)}
        if pairs:
            outs, counts = pair_outcomes(pairs)
            d["pair_consistency"] = counts
            d["pairs_not_judged"] = unjudged_pairs(pairs, set(gens))
            d["position"] = position_bias(pairs)
            d["length"] = length_bias(outs, gens)
        outs = pair_outcomes(js)[0] + rank_outcomes(js)
        if outs:
            seen = {m for o in outs for m in (o.a, o.b)}
            t = st.ScoreTensor.build(outs, [m for m in models if m in seen]
                                     + sorted(seen - set(models)))
            M = st.win_rates(t)
            K = len(t.models)
            with np.errstate(invalid="ignore"):
                mean = np.nanmean(np.where(np.eye(K) == 1, np.nan, M), axis=1) if K > 1 \
                    else np.array([np.nan])
            d["win_rate"] = {"models": t.models, "matrix": M, "mean_win_rate": mean,
                             "n_prompts": len(t.prompts)}
        if baseline and any(baseline in j.models for j in pairs):
            d["arena"] = arena_scores(pairs, models, baseline, rounds, seed)
        if rs:
            d["writingbench_overall"] = writingbench_overall(rs, models, rounds, seed)
        out[name] = d
    return out


def inter_judge_agreement(judgments: list[Judgment], rubric: list[RubricScore],
                          rounds: int = 1000, seed: int = 0) -> list[dict[str, Any]]:
    """For every pair of judges: agreement on which answer is better (or a tie) on the same
    prompt and model pair; Cohen's kappa with a 95% bootstrap CI over those decisions."""
    outs = judge_outcomes(judgments, rubric)
    rows = []
    for a, b in itertools.combinations(sorted(outs), 2):
        k = agreement(outs[a], outs[b], rounds, seed)
        if k is not None:
            rows.append({"judge_a": a, "judge_b": b, **k})
    return rows
