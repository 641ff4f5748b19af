"""Construction settings: thresholds, refinement rounds, per-stage sampling. Loadable from YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import AliasChoices, BaseModel, Field, model_validator

from .checks import ChecksConfig
from .stages import PREFIX_TEMPLATE, STAGE_NAMES, StageParams
from .stages import STAGES as STAGE_TABLE
from .stages import stage as stage_of

STAGES = STAGE_NAMES  # the stage names, in the order a round runs them (from `stages.STAGES`)


class SearchConfig(BaseModel):
    """Perplexity-guided reasoning search (`construct search-reasoning`, or after `construct run`
    when `enabled`): K rewrites of one decision segment per step, the one that lowers the text's
    clipped NLL most is kept; stop at `target_gain` or after `max_steps`."""

    enabled: bool = Field(False, description="run the search on accepted triplets after "
                                             "`construct run` (local executor)")
    candidates: int = Field(2, ge=1, description="rewrites asked for per step (REER: 2)")
    max_steps: int = Field(10, ge=1, description="steps per triplet (REER: 10)")
    target_gain: float | None = Field(None, description="stop once nll_prompt - nll_own "
                                                        "reaches this")
    min_improvement: float = Field(0.0, ge=0, description="a candidate is kept only when it "
                                                          "lowers the NLL by more than this")
    min_segment_chars: int = Field(30, ge=1, description="shorter pieces join the next one")
    temperature: float = 0.8
    max_tokens: int = 400
    scorer: str = Field("transformers", description="transformers, vllm or sglang")
    scorer_model: str | None = Field(None, description="folder, .gguf or embedded name; or the "
                                                       "served model name")
    scorer_base_url: str | None = None


def _default_params() -> dict[str, StageParams]:
    """Each stage's default sampling, as its `Stage` declares it."""
    return {st.name: st.sampling.model_copy() for st in STAGE_TABLE}


class ConstructConfig(BaseModel):
    """Defaults follow the paper: screen >= 8; every score >= 8 and their sum >= 50."""

    lang: Literal["zh", "en"] = Field("zh", description="language of the instructions to the LLM")
    template_dir: str | None = Field(None, description="folder with <lang>/<name>.yaml overrides")
    layout: Literal["shared", "legacy"] = Field(
        "shared", description="prompt layout: shared (templates v2 under <lang>/shared/: every "
        "call of a text begins with the same system message and source text, so servers reuse "
        "its cached prefix) or legacy (templates v1: each stage its own system message first)")
    screen_threshold: int = 8
    min_each: int = 8
    min_sum: int = 50
    reject_below: int = Field(36, description="best six-score sum below this: rejected, "
                                              "not needs_review")
    max_rounds: int = Field(2, description="refinement rounds after the first attempt")
    max_article_chars: int = Field(6000, description="longer texts are cut in prompts (not in "
                                                     "the triplet)")
    min_reasoning_chars: int | None = Field(None, description="shorthand for "
                                            "checks.min_reasoning_chars")
    retries: int = Field(1, validation_alias=AliasChoices("retries", "json_retries"),
                         description="extra answers asked for when one is truncated, loops, "
                                     "or does not parse")
    structured_output: bool = Field(True, description="send JSON Schemas for JSON stages")
    checks: ChecksConfig = Field(
        default_factory=ChecksConfig, validation_alias=AliasChoices("checks", "reasoning_checks"),
        description="thresholds of the named LLM-free checks of prompt, reasoning and text "
        "(None turns one off; docs/gates.md lists them)")
    min_usefulness_gain: float | None = Field(
        None, description="gate for `construct usefulness --gate`: least gain in clipped mean "
                          "NLL of the text from the reasoning (None: no gate)")
    score_rule: Literal["argmax", "expected"] = Field(
        "expected", description="what the score thresholds compare: the integers the model wrote "
        "(argmax) or each dimension's expected value over the score tokens' probabilities "
        "(expected, G-Eval; the integer stands in where the server gives no logprobs)")
    top_logprobs: int = Field(10, ge=0, le=20, description="alternatives per token asked for "
                              "in scoring stages (0: none, integer scores only)")
    spread_warn_share: float = Field(0.9, gt=0, le=1, description="warn that a score dimension "
                                     "carries no information when this share of a run's "
                                     "scores are one value")
    seed: int = 0
    stages: dict[str, StageParams] = Field(default_factory=_default_params)
    search: SearchConfig = Field(default_factory=SearchConfig,
                                 description="optional reasoning search stage")

    def template_name(self, stage: str) -> str:
        """The template a construction stage renders under this layout (`construct_prefix` is
        the shared layout's common beginning)."""
        if stage == PREFIX_TEMPLATE:
            return "shared/prefix"
        return stage_of(stage).template(self.layout)

    @model_validator(mode="after")
    def _checks_follow(self) -> ConstructConfig:
        """The checks see the templates in use, and the top-level shorthand."""
        if self.min_reasoning_chars is not None:
            self.checks.min_reasoning_chars = self.min_reasoning_chars
        if self.template_dir and not self.checks.template_dir:
            self.checks.template_dir = self.template_dir
        return self

    @classmethod
    def load(cls, path: str | Path | None = None, **overrides: object) -> ConstructConfig:
        data = yaml.safe_load(Path(path).read_text("utf-8")) if path else {}
        data = {**(data or {}), **{k: v for k, v in overrides.items() if v is not None}}
        return cls.model_validate(data)
