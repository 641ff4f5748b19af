"""Warnings a reader cannot miss, computed from the analysis result: a judge that prefers one
answer slot (binomial test), verdicts that flip with the order too often, a length-bias slope,
verdicts or criterion scores lost to failed judge calls, and a disconnected comparison graph.

A judge that gives nearly every decisive verdict to the same slot says nothing about the
answers: the pairwise comparison it produced is marked not informative (the report shows that
instead of a 50% tie)."""

from __future__ import annotations

from typing import Any

POSITION_ALPHA = 0.01  # binomial test of the first slot's share of decisive verdicts vs 50%
SLOT_BOUND = 0.9  # this share (or 1 - it) of decisive verdicts in one slot: not informative
SLOT_BOUND_MIN = 10  # ... once there are at least this many decisive verdicts
INCONSISTENT_MAX = 1 / 3  # share of pairs whose verdict flips with the order
LENGTH_SLOPE = 0.5  # |win-rate change per unit of relative length difference|
LENGTH_ALPHA = 0.01


def _n(k: int, noun: str) -> str:
    return f"{k} {noun}{'' if k == 1 else 's'}"


def _warn(code: str, message: str, judge: str | None = None) -> dict[str, Any]:
    return {"code": code, "judge": judge, "message": message}


def slot_bound(position: dict[str, Any] | None) -> bool:
    """Whether a judge put nearly every decisive verdict in the same slot."""
    if not position or not position.get("decisive_verdicts"):
        return False
    rate = position["first_position_rate"]
    return (position["decisive_verdicts"] >= SLOT_BOUND_MIN
            and (rate >= SLOT_BOUND or rate <= 1 - SLOT_BOUND))


def judge_warnings(name: str, d: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    pos = d.get("position")
    if pos and pos.get("first_position_p") is not None and pos["first_position_p"] < POSITION_ALPHA:
        slot = "first" if pos["first_position_rate"] > 0.5 else "second"
        share = pos["first_position_rate"] if slot == "first" else 1 - pos["first_position_rate"]
        out.append(_warn("position_bias", f"judge {name} prefers the answer shown {slot}: "
                         f"{100 * share:.1f}% of {pos['decisive_verdicts']} decisive verdicts "
                         f"(binomial test p = {pos['first_position_p']:.1e})", name))
    if pos and pos.get("inconsistent_rate") is not None \
            and pos["inconsistent_rate"] > INCONSISTENT_MAX:
        out.append(_warn("inconsistent", f"judge {name} changes its verdict when the answers "
                         f"swap places in {pos['inconsistent']} of {pos['pairs_both_orders']} "
                         f"pairs ({100 * pos['inconsistent_rate']:.0f}%, threshold "
                         f"{100 * INCONSISTENT_MAX:.0f}%); those pairs count as ties", name))
    lb = d.get("length")
    if lb and lb.get("slope") is not None and lb.get("slope_p") is not None \
            and abs(lb["slope"]) >= LENGTH_SLOPE and lb["slope_p"] < LENGTH_ALPHA:
        side = "longer" if lb["slope"] > 0 else "shorter"
        out.append(_warn("length_bias", f"judge {name} favours {side} answers: the win rate "
                         f"changes by {100 * lb['slope']:+.0f} points per unit of relative length "
                         f"difference (p = {lb['slope_p']:.1e}); the longer answer wins "
                         f"{100 * (lb['longer_win_rate'] or 0):.0f}% of the time", name))
    lone = (d.get("pair_consistency") or {}).get("single_order", 0)
    gone = d.get("pairs_not_judged", 0)
    if lone or gone:
        what = [f"{_n(lone, 'prompt and model pair')} judged in one order only"] if lone else []
        what += [f"{_n(gone, 'pair')} not judged in either order"] if gone else []
        out.append(_warn("lost_verdicts", f"judge {name}: verdicts lost to failed calls: "
                         + " and ".join(what) + "; rerun `coig-writer eval judge` to ask again",
                         name))
    return out


def build_warnings(result: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(warnings, informativeness) for a result; informativeness says whether the pooled
    pairwise comparison means anything and, per judge, which do not."""
    warnings: list[dict[str, Any]] = []
    judges = result.get("judges_detail", {})
    bound = sorted(n for n, d in judges.items() if slot_bound(d.get("position")))
    pairwise = sorted(n for n, d in judges.items() if d.get("position"))
    for name, d in judges.items():
        warnings += judge_warnings(name, d)
    informative: dict[str, Any] = {"pairwise": True, "reason": None, "judges_not_informative": bound}
    if bound and set(bound) == set(pairwise):
        informative.update(pairwise=False, reason=(
            f"not informative: judge{'s' if len(bound) > 1 else ''} {', '.join(bound)} gave "
            "nearly every verdict to the same answer slot, so the win rates, Bradley-Terry "
            "ratings and Arena-Hard scores below measure the slot, not the answers"))
        warnings.insert(0, _warn("not_informative", informative["reason"]))
    elif bound:
        warnings.insert(0, _warn("not_informative", f"judge{'s' if len(bound) > 1 else ''} "
                                 f"{', '.join(bound)} gave nearly every verdict to the same slot; "
                                 "the pooled figures include those verdicts, which pulls them towards 50%: "
                                 "report with "
                                 "--judge-name for the other judges"))
    missing = (result.get("rubric") or {}).get("writingbench", {}).get("missing", {})
    short = {m: v for m, v in missing.items() if v["prompts_short"]}
    if short:
        warnings.append(_warn("lost_criteria", "criterion scores lost to failed judge calls: "
                              + "; ".join(f"{m}: {_n(v['criteria_missing'], 'criterion score')} "
                                          f"on {_n(v['prompts_short'], 'prompt')}"
                                          for m, v in short.items())
                              + "; rerun `coig-writer eval judge --mode rubric` to ask again"))
    for row in (result.get("arena") or {}).get("rows", []):
        if row["lone_orders"]:
            warnings.append(_warn("lone_orders", f"Arena-Hard: {row['model']} has "
                                  f"{row['lone_orders']} verdicts against the baseline in one "
                                  "order only; they are counted but not scored"))
        if row["score"] is None:
            warnings.append(_warn("no_baseline_battles", f"Arena-Hard: {row['model']} has "
                                  f"{row['note']}"))
    groups = (result.get("overall") or {}).get("connected_groups") or []
    if groups:
        warnings.append(_warn("disconnected", "the comparison graph is disconnected: groups "
                              + "; ".join(", ".join(g) for g in groups)
                              + " were never compared, so Bradley-Terry scores across groups "
                              "are not comparable"))
    return warnings, informative
