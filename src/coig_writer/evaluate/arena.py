"""Arena-Hard scores by Arena-Hard-Auto's own rule (`show_result.py`), so that a score can stand
beside the published leaderboard:

- only battles between a model and the named baseline count (verdicts between two other models
  are ignored here; they feed the win-rate matrix and Bradley-Terry ratings instead);
- a (judge, prompt, model) is scored only when both orders were judged (model shown first, then
  the baseline shown first); a lone order, which carries the judge's slot bias, is counted and
  listed but not scored;
- each verdict becomes battles from the model's side: A>>B = 3 wins, A>B = 1 win, A=B = one
  tie worth 1/2, B>A = 1 loss, B>>A = 3 losses; with a judge ensemble every judge's battles are
  pooled, as Arena-Hard concatenates the judgment files of its judges;
- the score is the model's share of won battles in % (the baseline is 50). Fitting Arena-Hard's
  Bradley-Terry/logistic model on baseline-only battles gives exactly this share: every model
  has the baseline as its only opponent, so each strength is fitted alone, sigma(t) = mean.

Two intervals, labelled: ours (95%, resampling prompts, so a prompt's battles stay together)
and Arena-Hard's (90%, resampling single battles per model, its 5th and 95th percentiles).
A model that was never judged against the baseline gets no score and a note.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..records import Judgment

STRONG_WEIGHT = 3
# the verdict from the slot-A answer's side -> battle scores of the slot-A answer
BATTLES = {"A>>B": [1.0] * STRONG_WEIGHT, "A>B": [1.0], "A=B": [0.5], "B>A": [0.0],
           "B>>A": [0.0] * STRONG_WEIGHT}
RULE = ("Arena-Hard-Auto's rule: baseline battles only, both orders required, A>>B = 3 battles, "
        "ties 1/2; score = share of battles won (%)")
OURS_CI = "95% CI, bootstrap over prompts (ours)"
ARENA_CI = "90% CI, bootstrap over single battles (Arena-Hard's convention)"


def verdict_of(j: Judgment) -> str | None:
    """The five-level verdict, made to agree with the recorded winner (a verdict that
    contradicts the winner falls back to the winner's slight verdict)."""
    if j.kind != "pair" or j.winner is None:
        return None
    a, b = j.models
    slight = "A>B" if j.winner == a else "B>A" if j.winner == b else "A=B"
    v = j.verdict
    return v if v in (slight, slight.replace(">", ">>")) else slight


def baseline_battles(judgments: Iterable[Judgment], baseline: str
                     ) -> tuple[dict[str, dict[str, list[float]]], dict[str, list[str]]]:
    """(model -> prompt -> battle scores from the model's side, model -> lone-order entries
    "prompt (judge)") over the verdicts against `baseline`."""
    orders: dict[tuple[str, str, str], dict[str, str]] = defaultdict(dict)
    for j in judgments:
        v = verdict_of(j)
        if v is None or baseline not in j.models or len(set(j.models)) != 2:
            continue
        other = j.models[1] if j.models[0] == baseline else j.models[0]
        slot = "first" if j.models[0] == other else "second"
        orders[(j.judge, j.prompt_id, other)][slot] = v
    scored: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    lone: dict[str, list[str]] = defaultdict(list)
    for (judge, pid, model), got in sorted(orders.items()):
        if len(got) < 2:
            lone[model].append(f"{pid} ({judge})")
            continue
        scored[model][pid] += BATTLES[got["first"]] + [1 - s for s in BATTLES[got["second"]]]
    return {m: dict(p) for m, p in scored.items()}, dict(lone)


def _prompt_ci(per: dict[str, list[float]], rounds: int, rng: np.random.Generator,
               alpha: float) -> list[float]:
    sums = np.array([sum(v) for v in per.values()])
    counts = np.array([len(v) for v in per.values()], dtype=float)
    idx = rng.integers(0, len(sums), (rounds, len(sums)))
    boots = 100 * sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    return [float(np.percentile(boots, 100 * alpha / 2)),
            float(np.percentile(boots, 100 * (1 - alpha / 2)))]


def _battle_ci(scores: np.ndarray, rounds: int, rng: np.random.Generator) -> list[float]:
    boots = 100 * scores[rng.integers(0, len(scores), (rounds, len(scores)))].mean(axis=1)
    return [float(np.quantile(boots, 0.05)), float(np.quantile(boots, 0.95))]


def arena_scores(judgments: Iterable[Judgment], models: Sequence[str], baseline: str,
                 rounds: int = 1000, seed: int = 0, alpha: float = 0.05) -> dict[str, Any]:
    """One row per model (the baseline last, at 50): score, both intervals, prompts and battles
    scored, lone orders (listed, not scored), and a note when there is no score."""
    judgments = list(judgments)
    models = [m for m in models if m != baseline]
    per, lone = baseline_battles(judgments, baseline)
    if not per and not lone:
        raise ValueError(f"no pairwise verdicts against the baseline {baseline!r}; judged "
                         f"models: {', '.join(models) or 'none'}")
    rows = []
    for n, m in enumerate([*models, *sorted(set(per) - set(models))]):
        mine = per.get(m, {})
        row: dict[str, Any] = {"model": m, "prompts": len(mine),
                               "battles": sum(len(v) for v in mine.values()),
                               "lone_orders": len(lone.get(m, [])),
                               "lone_order_prompts": lone.get(m, []), "score": None,
                               "ci95_prompts": None, "ci90_battles": None, "note": None}
        if mine:
            flat = np.concatenate([np.asarray(v) for v in mine.values()])
            row["score"] = float(100 * flat.mean())
            row["ci95_prompts"] = _prompt_ci(mine, rounds, np.random.default_rng(seed + n), alpha)
            row["ci90_battles"] = _battle_ci(flat, rounds, np.random.default_rng(seed + n))
        elif lone.get(m):
            row["note"] = (f"no score: judged against {baseline} in one order only "
                           f"({row['lone_orders']} verdicts); Arena-Hard needs both orders")
        else:
            row["note"] = f"no score: never judged against {baseline}"
        rows.append(row)
    rows.append({"model": baseline, "prompts": None, "battles": None, "lone_orders": 0,
                 "lone_order_prompts": [], "score": 50.0, "ci95_prompts": [50.0, 50.0],
                 "ci90_battles": [50.0, 50.0], "note": "baseline (50 by definition)"})
    return {"baseline": baseline, "rule": RULE, "rounds": rounds, "interval_ours": OURS_CI,
            "interval_arena_hard": ARENA_CI, "judges": sorted({j.judge for j in judgments}),
            "rows": rows, "verdicts": verdict_counts(judgments, baseline)}


def verdict_counts(judgments: Iterable[Judgment], baseline: str | None = None) -> dict[str, int]:
    """Five-level verdicts (against `baseline` only when given), as recorded."""
    out = {v: 0 for v in BATTLES}
    for j in judgments:
        v = verdict_of(j)
        if v is not None and (baseline is None or baseline in j.models):
            out[v] += 1
    return out
