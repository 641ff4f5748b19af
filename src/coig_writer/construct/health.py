"""The gate's health: does a score carry information? Over a run's (or a file's) verdicts, per
dimension: how spread the integers are (standard deviation, the share of the most common value),
the expected scores' spread, and how sure the model was (the probability it gave its own score,
on average). A dimension where nearly every score is the same value, or where the model's own
score had little probability, cannot tell good from bad: the warnings say so, loudly.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from typing import Any

from ..records import SCORE_DIMENSIONS

MIN_FOR_SPREAD = 5  # fewer verdicts than this: too few to call a dimension flat
UNSURE_P = 0.35  # the model's own score below this probability on average: close to guessing


def score_health(rows: Iterable[dict[str, Any]], *, warn_share: float = 0.9,
                 dimensions: tuple[str, ...] = SCORE_DIMENSIONS) -> dict[str, Any]:
    """`rows`: dicts with `scores` (dimension -> int or None), optionally `expected_scores` and
    `p_value` (dimension -> the probability the model gave the score it wrote; see
    `health_row`). Returns per-dimension figures and the warnings."""
    rows = [r for r in rows if r.get("scores")]
    n = len(rows)
    dims: dict[str, Any] = {}
    warnings: list[str] = []
    with_probs = sum(1 for r in rows if r.get("expected_scores"))
    for d in dimensions:
        ints = [float(r["scores"][d]) for r in rows if r["scores"].get(d) is not None]
        exp = [float(r["expected_scores"][d]) for r in rows
               if (r.get("expected_scores") or {}).get(d) is not None]
        own = [float(r["p_value"][d]) for r in rows if (r.get("p_value") or {}).get(d) is not None]
        mode, count = Counter(ints).most_common(1)[0] if ints else (None, 0)
        share = count / len(ints) if ints else 0.0
        dims[d] = {"n": len(ints), "sd": statistics.pstdev(ints) if len(ints) > 1 else 0.0,
                   "mode": mode, "mode_share": share,
                   "expected_sd": statistics.pstdev(exp) if len(exp) > 1 else None,
                   "expected_mean": statistics.fmean(exp) if exp else None,
                   "p_own_mean": statistics.fmean(own) if own else None}
        if len(ints) >= MIN_FOR_SPREAD and share >= warn_share:
            warnings.append(f"{d}: {share:.0%} of {len(ints)} scores are {mode:g}: this score "
                            "carries no information and cannot tell good from bad")
        if own and statistics.fmean(own) < UNSURE_P:
            warnings.append(f"{d}: the model gave its own score only p={statistics.fmean(own):.2f} "
                            "on average: it is close to guessing")
    if n and not with_probs:
        warnings.append("no score probabilities (the server returned no logprobs): thresholds "
                        "compared the integers the model wrote")
    return {"n": n, "with_probabilities": with_probs, "dimensions": dims,
            "warnings": warnings, "too_few": n < MIN_FOR_SPREAD}


def health_lines(h: dict[str, Any]) -> list[str]:
    """One line per dimension, then the warnings (for the console)."""
    if not h["n"]:
        return ["gate health: no scored verdicts"]
    lines = [f"gate health over {h['n']} scored verdicts ({h['with_probabilities']} with score "
             "probabilities)" + ("; too few to call a score flat" if h["too_few"] else "") + ":"]
    for d, v in h["dimensions"].items():
        exp = (f", expected {v['expected_mean']:.2f} (sd {v['expected_sd']:.2f})"
               if v["expected_mean"] is not None and v["expected_sd"] is not None else
               f", expected {v['expected_mean']:.2f}" if v["expected_mean"] is not None else "")
        own = f", own score p={v['p_own_mean']:.2f}" if v["p_own_mean"] is not None else ""
        mode = f"{v['mode']:g}" if v["mode"] is not None else "-"
        lines.append(f"  {d:<21} sd {v['sd']:.2f}, {v['mode_share']:.0%} are {mode}{exp}{own}")
    return lines


def health_row(scores: dict[str, Any] | None, expected: dict[str, float] | None,
               confidence: dict[str, float] | None) -> dict[str, Any]:
    """A row for `score_health` from a triplet's or a verdict's score fields."""
    return {"scores": scores, "expected_scores": expected, "p_value": confidence}
