"""Named LLM-free checks of a (prompt, reasoning, text) triplet, each a reason in words.

Every check has a `name`, a target (prompt, reasoning or text), thresholds in `ChecksConfig`
(None turns it off) and returns a `CheckResult` with the measured value and a `detail` that says
what is wrong and what to do (a rejection reason and refinement feedback at once). Severity
"fail" keeps a triplet from acceptance; "review" (form versus genre) only asks for a human.

    from coig_writer.construct.checks import CheckInput, run_checks, failed
    results = run_checks(CheckInput(prompt, reasoning, text, genre="classical_shi"))
    reasons = [r.reason for r in failed(results)]

`CHECKS` is the registry (docs/gates.md lists it with the thresholds and measured figures).
"""

from .base import Check, CheckInput, CheckResult, Outcome, Severity, Target, failed
from .config import ChecksConfig, ReasoningChecks
from .form import detect_form
from .grounding import Grounding, background_texts, grounding
from .instructions import instruction_ngrams, instruction_overlap
from .prompt import copied_clauses, copied_piece, copied_run, copied_span, source_mentions
from .prose import non_prose, voice
from .reasoning import DECISION_KINDS, decision_kinds, ngram_overlap
from .registry import CHECKS, checks_markdown, run_checks
from .report import LEGACY_REASONING_CHECKS, reasoning_problems, reasoning_report
from .requirements import (
    REQUIREMENT_MARKERS,
    requirement_clauses,
    requirement_coverage,
    requirement_phrases,
    strip_list_markers,
)
from .units import longest_shared_run

__all__ = [
    "CHECKS", "DECISION_KINDS", "LEGACY_REASONING_CHECKS", "REQUIREMENT_MARKERS", "Check",
    "CheckInput", "CheckResult", "ChecksConfig", "Grounding", "checks_markdown", "Outcome", "ReasoningChecks",
    "Severity", "Target", "background_texts", "copied_clauses", "copied_piece", "copied_run",
    "copied_span", "decision_kinds",
    "detect_form", "failed", "grounding", "instruction_ngrams", "instruction_overlap",
    "longest_shared_run", "ngram_overlap", "non_prose", "reasoning_problems", "reasoning_report",
    "requirement_clauses", "requirement_coverage", "requirement_phrases", "run_checks",
    "source_mentions", "strip_list_markers", "voice",
]
