"""How well the named checks tell good triplets from bad ones: run them on good triplets, on
every cross-pairing of those triplets (the reasoning of text i with the prompt and text of j;
the prompt of i with the reasoning and text of j), and on planted defects."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .base import CheckInput, failed
from .config import ChecksConfig
from .registry import CHECKS, run_checks

GOLD_ZH = "data/sample/triplets_zh.jsonl"


def load_rows(path: str | Path | None = None) -> list[dict[str, Any]]:
    """Rows of a triplets JSONL file (default: the packaged hand-written Chinese triplets)."""
    text = (Path(path).read_text("utf-8") if path is not None
            else resources.files("coig_writer").joinpath(GOLD_ZH).read_text("utf-8"))
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def as_input(row: dict[str, Any], **change: Any) -> CheckInput:
    """A check input from a released-format row (`query`, `thought`, `answer`, optional
    `title`, `author`, `genre`, `lang`)."""
    d = {"prompt": row["query"], "reasoning": row["thought"], "text": row["answer"],
         "lang": row.get("lang"), "genre": row.get("genre"), "title": row.get("title"),
         "author": row.get("author")}
    return CheckInput(**{**d, **change})


def cross_pairings(rows: Sequence[dict[str, Any]]) -> dict[str, list[CheckInput]]:
    """`reasoning_swap`: reasoning of i on the prompt and text of j; `prompt_swap`: prompt of
    i on the reasoning and text of j (i != j; title, author and genre are j's)."""
    swaps: dict[str, list[CheckInput]] = {"reasoning_swap": [], "prompt_swap": []}
    for i, a in enumerate(rows):
        for j, b in enumerate(rows):
            if i != j:
                swaps["reasoning_swap"].append(as_input(b, reasoning=a["thought"]))
                swaps["prompt_swap"].append(as_input(b, prompt=a["query"]))
    return swaps


@dataclass
class Tally:
    """Per check, how many inputs of a set it failed (any severity), and how many any
    fail-severity check caught."""

    total: int = 0
    by_check: Counter[str] = field(default_factory=Counter)
    caught: int = 0

    def add(self, names: Iterable[str], rejected: bool) -> None:
        self.total += 1
        self.by_check.update(set(names))
        self.caught += rejected


def tally(inputs: Iterable[CheckInput], cfg: ChecksConfig | None = None) -> Tally:
    out = Tally()
    for inp in inputs:
        results = run_checks(inp, cfg)
        out.add((r.name for r in failed(results, None)), bool(failed(results)))
    return out


def discrimination(rows: Sequence[dict[str, Any]], cfg: ChecksConfig | None = None
                   ) -> dict[str, Tally]:
    """Tallies for the good rows and their two kinds of cross-pairing."""
    sets = {"good": [as_input(r) for r in rows], **cross_pairings(rows)}
    return {name: tally(inputs, cfg) for name, inputs in sets.items()}


def markdown_table(tallies: dict[str, Tally]) -> str:
    """One row per check: how many of each set it flags; then any fail-severity check."""
    names = list(tallies)
    head = "| check | " + " | ".join(f"{n} (of {tallies[n].total})" for n in names) + " |"
    lines = [head, "|---|" + "---|" * len(names)]
    for check in CHECKS:
        lines.append(f"| {check} | " + " | ".join(str(tallies[n].by_check[check]) for n in names)
                     + " |")
    lines.append("| **any fail-severity check** | "
                 + " | ".join(f"**{tallies[n].caught}**" for n in names) + " |")
    return "\n".join(lines)
