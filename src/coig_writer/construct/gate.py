"""The gate: `Gate.judge(ctx, round, prompt, reasoning) -> Verdict` is the one place acceptance
is decided. It runs the LLM-free checks, the validation stage and the score stage (with score
probabilities where the server returns them), then the acceptance rule (`verdict.decide`).

`construct run` calls it after generating each round's prompt and reasoning; `construct gate`
calls it on the rows of a file; `construct audit-gates` on originals and counterfactual
variants; `review calibration` compares its stored verdicts with reviewers'.
"""

from __future__ import annotations

from collections.abc import Sequence

from .calls import ItemContext, StageCaller
from .checks import CheckInput, CheckResult, ChecksConfig, run_checks
from .verdict import Verdict, decide


def named_checks(ctx: ItemContext, prompt: str, reasoning: str, cfg: ChecksConfig,
                 others: Sequence[str] = ()) -> list[CheckResult]:
    """Every enabled LLM-free check's result for one triplet (the text as the prompts show
    it; `others`: other texts of the run or file, else the packaged background set)."""
    return run_checks(CheckInput(prompt, reasoning, ctx.article, genre=ctx.genre,
                                 title=ctx.title or None, author=ctx.author or None,
                                 others=tuple(others)), cfg)


class Gate:
    """The checks, validation and scores of one config over a stage caller."""

    def __init__(self, caller: StageCaller, others: Sequence[str] = ()):
        self.caller = caller
        self.config = caller.config
        self.others = tuple(others)

    def checks(self, ctx: ItemContext, prompt: str, reasoning: str) -> list[CheckResult]:
        return named_checks(ctx, prompt, reasoning, self.config.checks, self.others)

    async def judge(self, ctx: ItemContext, rnd: int, prompt: str, reasoning: str) -> Verdict:
        """The verdict on (prompt, reasoning, ctx's text); stage results stored under `rnd`."""
        cfg = self.config
        checks = self.checks(ctx, prompt, reasoning)
        v = await self.caller.call("validate", ctx, rnd, prompt=prompt, reasoning=reasoning)
        s = await self.caller.call("score", ctx, rnd, prompt=prompt, reasoning=reasoning)
        return decide(checks, v.output if v.ok else None, v.error, s.output if s.ok else None,
                      s.error, min_each=cfg.min_each, min_sum=cfg.min_sum,
                      reject_below=cfg.reject_below, rule=cfg.score_rule)
