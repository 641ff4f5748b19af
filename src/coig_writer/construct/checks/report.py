"""The reasoning report of the first checks, kept for its callers (reasoning search, the
dataset card, bench/usefulness): the same measurements, now taken by the named checks."""

from __future__ import annotations

from typing import Any

from .base import CheckInput, failed
from .config import ChecksConfig
from .reasoning import decision_kinds, ngram_overlap
from .registry import run_checks
from .requirements import requirement_coverage
from .units import longest_shared_run, squash

# the checks `reasoning_problems` has always run; the newer ones run through `run_checks`
LEGACY_REASONING_CHECKS = ("reasoning_copies_text", "reasoning_misses_requirements",
                           "reasoning_lacks_decisions", "reasoning_length_ratio")


def reasoning_problems(prompt: str, reasoning: str, text: str, cfg: ChecksConfig | None = None,
                       names: tuple[str, ...] = LEGACY_REASONING_CHECKS) -> list[str]:
    """`name: detail` for each of `names` (by default the four first reasoning checks) that
    fails; empty when all pass."""
    results = run_checks(CheckInput(prompt, reasoning, text), cfg, names=names)
    return [r.reason for r in failed(results)]


def reasoning_report(prompt: str, reasoning: str, text: str, cfg: ChecksConfig | None = None
                     ) -> dict[str, Any]:
    """Every measurement the first reasoning checks use, with the per-kind detail and the
    failed reasons."""
    cfg = cfg or ChecksConfig()
    r_share, t_share = ngram_overlap(reasoning, text, cfg.ngram)
    covered, missed = requirement_coverage(prompt, reasoning)
    kinds = decision_kinds(reasoning)
    return {
        "copy": {"longest_run": longest_shared_run(squash(reasoning), squash(text)),
                 "ngram": cfg.ngram, "reasoning_in_text": r_share, "text_in_reasoning": t_share},
        "requirements": {"covered": covered, "missed": missed,
                         "coverage": len(covered) / (len(covered) + len(missed))
                         if covered or missed else 1.0},
        "decision_kinds": {k: {"present": bool(v), "keywords": v} for k, v in kinds.items()},
        "kinds_present": sum(bool(v) for v in kinds.values()),
        "length_ratio": len(reasoning) / len(text) if text else float("inf"),
        "problems": reasoning_problems(prompt, reasoning, text, cfg),
    }
