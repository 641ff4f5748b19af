"""Options only `construct` commands take, declared once (the shared ones are in cli/options.py):
the corpus filters of `ingest` and `refilter`, the prompt layout and the refinement rounds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

LayoutOpt = Annotated[str | None, typer.Option(
    "--layout", help="Prompt layout: shared (every call of a text begins with the same cached "
                     "prefix; the default) or legacy (templates v1).")]
MaxRoundsOpt = Annotated[int | None, typer.Option("--max-rounds",
                                                  help="Refinement rounds after the first.")]

WhereOpt = Annotated[list[str] | None, typer.Option(
    "--where", help="Keep texts whose metadata meets FIELD OP VALUE (a number, true/false or a "
                    "string), e.g. 'likes>=5000', 'featured==true'; repeat for several (all "
                    "must hold).")]
MinCharsOpt = Annotated[int, typer.Option("--min-chars", help="Shorter texts are filtered.")]
MaxCharsOpt = Annotated[int, typer.Option("--max-chars", help="Longer texts are filtered.")]
AfterOpt = Annotated[str | None, typer.Option(
    "--after", help="Keep texts dated after YYYY-MM-DD (paper: 2022-10-31).")]
RequireDateOpt = Annotated[bool, typer.Option("--require-date/--no-require-date",
                                              help="Filter texts without a date.")]
NearDupOpt = Annotated[float, typer.Option(
    "--near-dup", help="Character 5-gram Jaccard at or above which a text is a near duplicate "
                       "of a stored or earlier one.")]
ScoreRuleOpt = Annotated[str | None, typer.Option(
    "--score-rule", help="What the score thresholds compare: argmax (the integers written) or "
                         "expected (their expected value over the score tokens' "
                         "probabilities); default: the config's.")]
VerdictsOutOpt = Annotated[Path, typer.Option(
    "--out", help="Where the verdicts go (.jsonl or .parquet), one row per input row in input "
                  "order.")]
KeepLangOpt = Annotated[list[str] | None, typer.Option(
    "--lang", help="Keep texts in this language only (ISO 639-1, e.g. zh; repeat for several); "
                   "others are filtered as other_language.")]
PrefilterOpt = Annotated[bool, typer.Option(
    "--prefilter/--no-prefilter", help="Apply the cheap quality pre-filters (Han share, repeated "
    "lines, boilerplate, punctuation, links, lists; see docs/web-ingest.md).")]
PrefilterConfigOpt = Annotated[Path | None, typer.Option(
    "--prefilter-config", help="YAML file of pre-filter thresholds (implies --prefilter).")]
AuditStatusOpt = Annotated[str | None, typer.Option(
    "--status", help="Audit the stored triplets of this status (accepted, needs_review, "
                     "rejected).")]
FirstTripletsOpt = Annotated[int | None, typer.Option(
    "--triplets", help="Use only the first N triplets.")]
