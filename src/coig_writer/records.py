"""Pydantic records shared by every stage: source texts, triplets, stage results."""

from __future__ import annotations

import datetime as dt
import hashlib
import unicodedata
from typing import Any, Literal

from pydantic import BaseModel, Field

TripletStatus = Literal["accepted", "needs_review", "rejected", "refining"]
SCORE_DIMENSIONS = (
    "prompt_quality",
    "prompt_creativity",
    "reasoning_quality",
    "reasoning_creativity",
    "text_quality",
    "text_creativity",
)


def utcnow() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def normalize_text(text: str) -> str:
    """NFKC, unified newlines, trimmed lines: the form used for hashing and dedup."""
    text = unicodedata.normalize("NFKC", text).replace("\r\n", "\n").replace("\r", "\n")
    return "\n".join(line.strip() for line in text.split("\n")).strip()


def content_hash(text: str) -> str:
    return hashlib.sha256(normalize_text(text).encode("utf-8")).hexdigest()


class Provenance(BaseModel):
    """Where a text came from."""

    source_url: str | None = None
    date: dt.date | None = None
    license: str | None = None
    title: str | None = None
    author: str | None = None
    origin: str | None = Field(None, description="file:line it was ingested from")


class SourceText(BaseModel):
    """One corpus text. `status` is `ok` or `filtered` (with `filter_reason`): nothing is dropped."""

    id: str
    text: str
    provenance: Provenance = Field(default_factory=Provenance)
    meta: dict[str, Any] = Field(default_factory=dict)
    status: Literal["ok", "filtered"] = "ok"
    filter_reason: str | None = None
    duplicate_of: str | None = None
    ingested_at: str = Field(default_factory=utcnow)

    @property
    def hash(self) -> str:
        return content_hash(self.text)


class Scores(BaseModel):
    """Six-dimension scores (1-10), as in the paper's acceptance rule."""

    prompt_quality: int = Field(ge=0, le=10)
    prompt_creativity: int = Field(ge=0, le=10)
    reasoning_quality: int = Field(ge=0, le=10)
    reasoning_creativity: int = Field(ge=0, le=10)
    text_quality: int = Field(ge=0, le=10)
    text_creativity: int = Field(ge=0, le=10)

    @property
    def total(self) -> int:
        return sum(getattr(self, d) for d in SCORE_DIMENSIONS)

    def failures(self, min_each: int, min_sum: int) -> list[str]:
        out = [f"{d}={getattr(self, d)}<{min_each}" for d in SCORE_DIMENSIONS
               if getattr(self, d) < min_each]
        if self.total < min_sum:
            out.append(f"sum={self.total}<{min_sum}")
        return out


class StageResult(BaseModel):
    """The parsed result of one LLM stage for one item and round, with its raw call key."""

    item_id: str
    stage: str
    round: int = 0
    ok: bool = True
    output: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    error_kind: str | None = Field(None, description="truncated, loop, unparseable or invalid")
    template: str
    template_hash: str
    cache_keys: list[str] = Field(default_factory=list)
    model: str
    run_id: str | None = None
    created_at: str = Field(default_factory=utcnow)


class Triplet(BaseModel):
    """A (query, thought, answer) triplet with its provenance, scores and review status.

    `id`, `query`, `thought`, `answer` are the released COIG-Writer fields.
    """

    id: str
    query: str = ""
    thought: str = ""
    answer: str
    source_id: str | None = None
    category: str | None = None
    genre: str | None = None
    status: TripletStatus = "needs_review"
    reasons: list[str] = Field(default_factory=list)
    screen: dict[str, Any] = Field(default_factory=dict)
    validation: dict[str, Any] = Field(default_factory=dict)
    scores: Scores | None = None
    expected_scores: dict[str, float] | None = Field(
        None, description="G-Eval expected value of each score dimension over the score "
        "tokens' probabilities (None: the server returned no logprobs)")
    score_mass: dict[str, float] | None = Field(
        None, description="per dimension, the probability mass found on score tokens")
    score_confidence: dict[str, float] | None = Field(
        None, description="per dimension, the probability the model gave the score it wrote")
    score_rule: Literal["argmax", "expected"] | None = Field(
        None, description="which scores the thresholds compared")
    checks: list[str] = Field(default_factory=list,
                              description="names of the LLM-free checks that failed")
    rounds: int = 0
    provenance: Provenance = Field(default_factory=Provenance)
    model: str | None = None
    templates: dict[str, str] = Field(default_factory=dict, description="template name -> sha256")
    run_id: str | None = None
    created_at: str = Field(default_factory=utcnow)
    updated_at: str = Field(default_factory=utcnow)
    pipeline_status: TripletStatus | None = Field(
        None, description="the pipeline's verdict, kept when human review sets `status`")
    review_status: str | None = Field(
        None, description="human review: accepted/rejected by k reviewers, or disputed")


class QuarantineEntry(BaseModel):
    """Input that could not be read: kept with file, line and error."""

    path: str
    line: int | None = None
    error: str
    raw: str = ""
    created_at: str = Field(default_factory=utcnow)

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}" if self.line is not None else self.path


# -- evaluation ----------------------------------------------------------------------------------
class EvalPrompt(BaseModel):
    """A writing prompt for evaluation."""

    id: str
    lang: Literal["zh", "en"]
    prompt: str
    category: str | None = None
    genre: str | None = None
    constraints: list[str] = Field(default_factory=list)
    set_name: str = "custom"
    source_id: str | None = Field(None, description="the benchmark's own id (index, uid)")
    domain: str | None = None
    subdomain: str | None = None
    text_lang: str | None = Field(None, description="language of the text when not zh/en")
    criteria: list[Criterion] = Field(default_factory=list)
    benchmark: BenchmarkInfo | None = None
    requirements: dict[str, list[str]] = Field(
        default_factory=dict, description="WritingBench requirement subsets the prompt is in "
        "(style, format, length) -> the names of its criteria that judge that requirement")


class Generation(BaseModel):
    """One model's answer to one evaluation prompt; `thinking` is split off when present."""

    model: str
    prompt_id: str
    raw: str
    thinking: str = ""
    answer: str
    params: dict[str, Any] = Field(default_factory=dict)
    backend_model: str | None = None
    cache_key: str | None = None
    finish_reason: str | None = None
    truncated: bool = Field(False, description="cut at max_tokens even after the retry")
    usage: dict[str, Any] | None = None
    created_at: str = Field(default_factory=utcnow)


class Judgment(BaseModel):
    """A pairwise verdict (`kind='pair'`: models [A, B] in shown order, winner A/B/tie) or a
    ranking (`kind='rank'`: `ranks` model -> 1..K). `source` is `judge` or `human`."""

    prompt_id: str
    kind: Literal["pair", "rank"]
    models: list[str]
    winner: str | None = None
    dimensions: dict[str, str] = Field(default_factory=dict)
    ranks: dict[str, float] = Field(default_factory=dict)
    source: str = "judge"
    judge: str
    template_hash: str | None = None
    cache_keys: list[str] = Field(default_factory=list)
    reason: str = ""
    created_at: str = Field(default_factory=utcnow)
    verdict: str | None = Field(None, description="five-level verdict in shown order: A>>B, "
                                "A>B, A=B, B>A, B>>A")

    @property
    def key(self) -> str:
        return f"{self.kind}|{self.source}|{self.judge}|{self.prompt_id}|{'>'.join(self.models)}"


class Criterion(BaseModel):
    """One rubric criterion of a prompt (WritingBench): description and score bands."""

    name: str
    description: str = ""
    bands: dict[str, str] = Field(default_factory=dict, description='"1-2" ... "9-10" -> text')


class BenchmarkInfo(BaseModel):
    """Where a benchmark prompt came from: name, version, licence and source file."""

    name: str
    version: str
    license: str
    source: str = Field(description="package==version:path inside the wheel")
    url: str | None = None


class RubricScore(BaseModel):
    """A rubric judge's score (1-10) of one model's answer on one criterion of its prompt."""

    prompt_id: str
    model: str
    criterion: int
    criterion_name: str = ""
    score: float
    reason: str = ""
    judge: str
    template_hash: str | None = None
    cache_keys: list[str] = Field(default_factory=list)
    created_at: str = Field(default_factory=utcnow)

    @property
    def key(self) -> str:
        return f"rubric|{self.judge}|{self.prompt_id}|{self.model}|{self.criterion}"


EvalPrompt.model_rebuild()
