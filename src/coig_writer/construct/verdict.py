"""The acceptance rule, in one place: from a triplet's LLM-free check results, its validation
and its scores to a status with reasons. Pure (no LLM, no store): the gate calls it after its
calls, and stored stage results can be judged again with it (`dataset.preferences`).

Scores are compared by `score_rule`: `argmax` compares the integers the model wrote; `expected`
compares each dimension's expected value over the score tokens' probabilities (G-Eval). Where a
dimension has no distribution (the server returned no logprobs), the integer stands in for it
and the verdict says so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ..records import SCORE_DIMENSIONS, Scores
from .checks import CheckResult

ScoreRule = Literal["argmax", "expected"]


@dataclass
class Verdict:
    """The gate's decision on one (prompt, reasoning, text)."""

    status: Literal["accepted", "needs_review", "rejected"]
    reasons: list[str]
    checks: list[str]  # failed checks that keep it from acceptance
    review_checks: list[str]  # failed checks that only ask for a human (form vs genre)
    check_results: list[CheckResult]
    validation: dict[str, Any]
    scores: Scores | None
    expected: dict[str, float] | None
    mass: dict[str, float] | None
    score_rule: ScoreRule
    confidence: dict[str, float] | None = None
    compared: dict[str, float] = field(default_factory=dict)  # the values the thresholds saw

    @property
    def problems(self) -> list[str]:
        return self.reasons

    @property
    def total(self) -> float:
        return sum(self.compared.values()) if self.compared else -1.0

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reasons": self.reasons, "checks": self.checks,
                "review_checks": self.review_checks,
                "check_results": [asdict(c) for c in self.check_results],
                "validation": self.validation,
                "scores": self.scores.model_dump() if self.scores else None,
                "expected_scores": self.expected, "score_mass": self.mass,
                "score_confidence": self.confidence, "score_rule": self.score_rule}


def distributions_of(score_output: dict[str, Any]) -> tuple[dict[str, float] | None, ...]:
    """(expected value, mass, probability of the written score) per dimension from a score
    stage's output; Nones when the answer carried no logprobs."""
    dists = score_output.get("distributions") or {}
    if not dists:
        return None, None, None
    return ({d: float(v["expected"]) for d, v in dists.items()},
            {d: float(v["mass"]) for d, v in dists.items()},
            {d: float(v.get("p_value", 0.0)) for d, v in dists.items()})


def compared_scores(scores: Scores, expected: dict[str, float] | None, rule: ScoreRule
                    ) -> tuple[dict[str, float], list[str]]:
    """The value per dimension the thresholds compare under `rule`, and notes on dimensions
    where the rule could not be followed (no distribution: the integer stands in)."""
    ints = {d: float(getattr(scores, d)) for d in SCORE_DIMENSIONS}
    if rule == "argmax":
        return ints, []
    expected = expected or {}
    missing = [d for d in SCORE_DIMENSIONS if d not in expected]
    vals = {d: expected.get(d, ints[d]) for d in SCORE_DIMENSIONS}
    notes = []
    if missing:
        notes.append("no score probabilities for " + ", ".join(missing)
                     + ": their integers were compared")
    return vals, notes


def score_failures(vals: dict[str, float], min_each: float, min_sum: float, rule: ScoreRule
                   ) -> list[str]:
    fmt = (lambda v: f"{v:g}") if rule == "argmax" else (lambda v: f"{v:.2f}")
    out = [f"{d}={fmt(v)}<{min_each:g}" for d, v in vals.items() if v < min_each]
    total = sum(vals.values())
    if total < min_sum:
        out.append(f"sum={fmt(total)}<{min_sum:g}")
    return out


def screen_failure(screen: dict[str, Any], threshold: float, rule: ScoreRule) -> str | None:
    """Why the screen keeps a text out (quality and creativity compared by `rule`; the
    integers where the answer carried no probabilities), or None."""
    dists = screen.get("distributions") or {}
    use_expected = rule == "expected" and all(k in dists for k in ("quality", "creativity"))
    vals = {k: float(dists[k]["expected"]) if use_expected else float(screen[k])
            for k in ("quality", "creativity")}
    if min(vals.values()) >= threshold:
        return None
    shown = " ".join(f"{k}={v:.2f}" if use_expected else f"{k}={v:g}" for k, v in vals.items())
    return f"screen: {shown}{' (expected)' if use_expected else ''} < {threshold:g}"


def decide(checks: list[CheckResult], validation: dict[str, Any] | None,
           validation_error: str | None, score_output: dict[str, Any] | None,
           score_error: str | None, *, min_each: float, min_sum: float, reject_below: float,
           rule: ScoreRule) -> Verdict:
    """The verdict (see the module docstring). `validation`/`score_output` are the parsed stage
    outputs (None with the stage's error when it gave no usable answer)."""
    reasons: list[str] = []
    failed = [c for c in checks if not c.passed and c.severity == "fail"]
    review = [c for c in checks if not c.passed and c.severity == "review"]
    reasons += [c.reason for c in failed]
    if validation is None:
        reasons.append(f"validation: {validation_error}")
    elif not validation["coherent"]:
        reasons += [f"incoherent: {i}" for i in validation["issues"]] or ["incoherent"]
        if validation.get("suggestion"):
            reasons.append(f"suggestion: {validation['suggestion']}")
    scores = expected = mass = confidence = None
    vals: dict[str, float] = {}
    used_rule = rule
    if score_output is None:
        reasons.append(f"scores: {score_error}")
    else:
        scores = Scores(**score_output["scores"])
        expected, mass, confidence = distributions_of(score_output)
        if rule == "expected" and expected is None:
            used_rule = "argmax"  # nothing to weigh: said in the reasons below
        vals, notes = compared_scores(scores, expected, used_rule)
        fails = score_failures(vals, min_each, min_sum, used_rule)
        if fails:
            label = "low scores" if used_rule == "argmax" else "low expected scores"
            reasons.append(f"{label}: " + ", ".join(fails))
            if score_output.get("comment"):
                reasons.append(f"reviewer: {score_output['comment']}")
            if rule == "expected" and expected is None:
                reasons.append("the server returned no score probabilities: integer scores "
                               "were compared")
            reasons += notes
    notes_review = [c.reason for c in review]
    if not reasons and not notes_review:
        status = "accepted"
    elif reasons and ((vals and sum(vals.values()) < reject_below)
                      or (validation is not None and not validation["coherent"])):
        status = "rejected"
    else:
        status = "needs_review"
    return Verdict(status, reasons + notes_review, [c.name for c in failed],
                   [c.name for c in review], checks, validation or {}, scores, expected, mass,
                   used_rule, compared=vals, confidence=confidence)
