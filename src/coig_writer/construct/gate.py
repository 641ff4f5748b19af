"""The gate: `Gate.judge(ctx, round, prompt, reasoning) -> Verdict` is the one place acceptance
is decided. It runs the LLM-free checks, the validation stage and the score stage (with score
probabilities where the server returns them), then the acceptance rule (`verdict.decide`).

`construct run` calls it after generating each round's prompt and reasoning; `construct gate`
calls it on the rows of a file; `construct audit-gates` on originals and counterfactual
variants; `review calibration` compares its stored verdicts with reviewers'.
"""

from __future__ import annotations

import re

from .calls import ItemContext, StageCaller
from .checks import reasoning_report
from .verdict import CheckOutcome, Verdict, decide

_NON_WORD = re.compile(r"[\s\W_]+")


def copied_span(prompt: str, article: str, span: int = 10) -> str | None:
    """The first run of `span` characters (punctuation and spaces ignored) of the prompt that
    also occurs in the article: a prompt that quotes whole lines dictates the text."""
    compact = _NON_WORD.sub("", prompt)
    body = _NON_WORD.sub("", article)
    for i in range(max(0, len(compact) - span + 1)):
        if compact[i:i + span] in body:
            return compact[i:i + span]
    return None


def named_checks(ctx: ItemContext, prompt: str, reasoning: str, cfg) -> list[CheckOutcome]:
    """Every LLM-free check's outcome for one triplet (the article as the prompts show it)."""
    out = []
    copied = copied_span(prompt, ctx.article)
    out.append(CheckOutcome("prompt_copies_text", copied is None,
                            f"the prompt quotes the text verbatim (e.g. {copied!r})" if copied
                            else ""))
    short = len(reasoning) < cfg.min_reasoning_chars
    out.append(CheckOutcome("reasoning_too_short", not short,
                            f"{len(reasoning)} < {cfg.min_reasoning_chars} characters",
                            value=len(reasoning), threshold=cfg.min_reasoning_chars))
    rep = reasoning_report(prompt, reasoning, ctx.article, cfg.reasoning_checks)
    failed = {p.split(":", 1)[0]: p.split(":", 1)[1].strip() for p in rep["problems"]}
    for name in ("reasoning_copies_text", "reasoning_misses_requirements",
                 "reasoning_lacks_decisions", "reasoning_length_ratio"):
        out.append(CheckOutcome(name, name not in failed, failed.get(name, "")))
    return out


class Gate:
    """The checks, validation and scores of one config over a stage caller."""

    def __init__(self, caller: StageCaller):
        self.caller = caller
        self.config = caller.config

    def checks(self, ctx: ItemContext, prompt: str, reasoning: str) -> list[CheckOutcome]:
        return named_checks(ctx, prompt, reasoning, self.config)

    async def judge(self, ctx: ItemContext, rnd: int, prompt: str, reasoning: str) -> Verdict:
        """The verdict on (prompt, reasoning, ctx's text); stage results stored under `rnd`."""
        cfg = self.config
        checks = self.checks(ctx, prompt, reasoning)
        v = await self.caller.call("validate", ctx, rnd, prompt=prompt, reasoning=reasoning)
        s = await self.caller.call("score", ctx, rnd, prompt=prompt, reasoning=reasoning)
        return decide(checks, v.output if v.ok else None, v.error, s.output if s.ok else None,
                      s.error, min_each=cfg.min_each, min_sum=cfg.min_sum,
                      reject_below=cfg.reject_below, rule=cfg.score_rule)
