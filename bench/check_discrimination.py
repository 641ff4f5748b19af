"""How well the named LLM-free checks tell good triplets from bad ones (no model involved).

On the hand-written triplets (src/coig_writer/data/sample/triplets_zh.jsonl, and the English
ones of tests/data/gate/good_en.jsonl) and on every cross-pairing of them: the reasoning of
text i on the prompt and text of j, and the prompt of i on the reasoning and text of j. Prints,
per check, how many of each set it flags (markdown), then the planted defects of
tests/data/gate/defects_zh.jsonl with the checks that fired, and the seconds per triplet.

    PYTHONPATH=src .venv/bin/python bench/check_discrimination.py [--others file]

`--others file` compares each reasoning with the file's other texts (as a gate over a file
does) instead of the packaged background set.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from coig_writer.construct.checks import CHECKS, CheckInput, failed, run_checks
from coig_writer.construct.checks.discrimination import (
    as_input,
    cross_pairings,
    load_rows,
    markdown_table,
    tally,
)

ROOT = Path(__file__).resolve().parents[1]
GATE = ROOT / "tests/data/gate"


def _with_others(inputs: list[CheckInput], texts: tuple[str, ...]) -> list[CheckInput]:
    return [CheckInput(i.prompt, i.reasoning, i.text, i.lang, i.genre, i.title, i.author, texts)
            for i in inputs]


def value_ranges(sets: dict[str, list[CheckInput]], names: tuple[str, ...]) -> str:
    """Per check, the range of its measured value on each set (where the threshold sits)."""
    lines = ["| check | " + " | ".join(f"{k} range" for k in sets) + " |",
             "|---|" + "---|" * len(sets)]
    for name in names:
        cells = []
        for inputs in sets.values():
            vals = [r.value for i in inputs for r in run_checks(i, names=[name])]
            cells.append(f"{min(vals):.3g} to {max(vals):.3g}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--others", choices=("background", "file"), default="background")
    args = ap.parse_args()
    start, n = time.perf_counter(), 0
    for label, rows in (("Chinese", load_rows()), ("English", load_rows(GATE / "good_en.jsonl"))):
        texts = tuple(r["answer"] for r in rows) if args.others == "file" else ()
        sets = {"good": [as_input(r) for r in rows], **cross_pairings(rows)}
        tallies = {k: tally(_with_others(v, texts)) for k, v in sets.items()}
        n += sum(t.total for t in tallies.values())
        print(f"\n{label}: {len(rows)} hand-written triplets, others = {args.others}\n")
        print(markdown_table(tallies))
        print("\nmeasured values\n")
        print(value_ranges({k: _with_others(v, texts) for k, v in sets.items()},
                           ("reasoning_not_grounded", "reasoning_ignores_prompt", "reasoning_generic",
                            "prompt_parrots_instructions", "prompt_requirements")))
    print("\nplanted defects (tests/data/gate/defects_zh.jsonl)\n")
    print("| defect | expected: value | fired (fail) | fired (review) |\n|---|---|---|---|")
    for row in load_rows(GATE / "defects_zh.jsonl"):
        results = run_checks(as_input(row))
        n += 1
        fail = [r.name for r in failed(results)]
        review = [r.name for r in failed(results, "review")]
        value = {r.name: r.value for r in results}
        expected = ", ".join(f"{c}: {value[c]}" for c in row["expect_checks"]) or "(none)"
        print(f"| {row['defect']} ({row['from']}) | {expected} | "
              f"{', '.join(fail) or '-'} | {', '.join(review) or '-'} |")
    secs = time.perf_counter() - start
    print(f"\n{n} triplets, {len(CHECKS)} checks each: {1000 * secs / n:.1f} ms per triplet")


if __name__ == "__main__":
    main()
