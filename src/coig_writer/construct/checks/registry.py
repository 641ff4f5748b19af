"""The registry of named checks, and running them."""

from __future__ import annotations

from collections.abc import Iterable

from .base import Check, CheckInput, CheckResult, Target
from .config import ChecksConfig
from .form_check import TEXT_CHECKS
from .prompt import PROMPT_CHECKS
from .reasoning import REASONING_CHECKS

CHECKS: dict[str, Check] = {c.name: c for c in (*PROMPT_CHECKS, *REASONING_CHECKS, *TEXT_CHECKS)}


def run_checks(inp: CheckInput, cfg: ChecksConfig | None = None, *,
               names: Iterable[str] | None = None, target: Target | None = None
               ) -> list[CheckResult]:
    """The result of every enabled check (of `names`, or of one `target`), in registry order."""
    cfg = cfg or ChecksConfig()
    wanted = set(names) if names is not None else None
    unknown = (wanted or set()) - set(CHECKS)
    if unknown:
        raise KeyError(f"unknown checks {sorted(unknown)}; known: {', '.join(CHECKS)}")
    return [c.run(inp, cfg) for c in CHECKS.values()
            if c.enabled(cfg) and (wanted is None or c.name in wanted)
            and (target is None or c.target == target)]


def checks_markdown(cfg: ChecksConfig | None = None) -> str:
    """The registry as a markdown table: name, target, severity, what it measures, thresholds
    (the ChecksConfig fields with their values). docs/gates.md holds it; a test keeps it so."""
    cfg = cfg or ChecksConfig()
    lines = ["| check | on | severity | measures | threshold (ChecksConfig field = default) |",
             "|---|---|---|---|---|"]
    for c in CHECKS.values():
        limits = ", ".join(f"`{f}` = {getattr(cfg, f)}" for f in c.fields)
        lines.append(f"| `{c.name}` | {c.target} | {c.severity} | {c.summary} | {limits} |")
    return "\n".join(lines)
