"""Construction settings: thresholds, refinement rounds, per-stage sampling. Loadable from YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import AliasChoices, BaseModel, Field

from .checks import ReasoningChecks

STAGES = ("screen", "reconstruct_prompt", "reasoning", "validate", "score")


class StageParams(BaseModel):
    temperature: float = 0.0
    max_tokens: int = 512
    max_tokens_cap: int | None = Field(None, description="a truncated answer is retried with "
                                       "more tokens up to this (default 4 x max_tokens)")

    @property
    def cap(self) -> int:
        return self.max_tokens_cap or 4 * self.max_tokens


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
    return {
        "screen": StageParams(temperature=0.0, max_tokens=200),
        "reconstruct_prompt": StageParams(temperature=0.7, max_tokens=400),
        "reasoning": StageParams(temperature=0.7, max_tokens=1200),
        "validate": StageParams(temperature=0.0, max_tokens=300),
        "score": StageParams(temperature=0.0, max_tokens=300),
    }


class ConstructConfig(BaseModel):
    """Defaults follow the paper: screen >= 8; every score >= 8 and their sum >= 50."""

    lang: Literal["zh", "en"] = Field("zh", description="language of the instructions to the LLM")
    template_dir: str | None = Field(None, description="folder with <lang>/<name>.yaml overrides")
    screen_threshold: int = 8
    min_each: int = 8
    min_sum: int = 50
    reject_below: int = Field(36, description="best six-score sum below this: rejected, "
                                              "not needs_review")
    max_rounds: int = Field(2, description="refinement rounds after the first attempt")
    max_article_chars: int = Field(6000, description="longer texts are cut in prompts (not in "
                                                     "the triplet)")
    min_reasoning_chars: int = 100
    retries: int = Field(1, validation_alias=AliasChoices("retries", "json_retries"),
                         description="extra answers asked for when one is truncated, loops, "
                                     "or does not parse")
    structured_output: bool = Field(True, description="send JSON Schemas for JSON stages")
    reasoning_checks: ReasoningChecks = Field(
        default_factory=ReasoningChecks, description="LLM-free checks of the reasoning: copying "
        "the text, requirement coverage, decision kinds, length ratio")
    min_usefulness_gain: float | None = Field(
        None, description="gate for `construct usefulness --gate`: least gain in clipped mean "
                          "NLL of the text from the reasoning (None: no gate)")
    seed: int = 0
    stages: dict[str, StageParams] = Field(default_factory=_default_params)
    search: SearchConfig = Field(default_factory=SearchConfig,
                                 description="optional reasoning search stage")

    @classmethod
    def load(cls, path: str | Path | None = None, **overrides: object) -> ConstructConfig:
        data = yaml.safe_load(Path(path).read_text("utf-8")) if path else {}
        data = {**(data or {}), **{k: v for k, v in overrides.items() if v is not None}}
        return cls.model_validate(data)
