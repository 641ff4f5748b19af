"""The construction runner: screen -> prompt -> reasoning -> validate -> score, with refinement.

Resumable by construction: every LLM answer is committed to the content-addressed cache before
it is used, each stage result is upserted by (item, stage, round), and each item ends in exactly
one triplet row. A rerun after kill -9 replays finished calls from the cache and continues.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..genres import load_taxonomy
from ..llm import (
    Backend,
    CachedBackend,
    ChatRequest,
    CompletionError,
    CompletionPolicy,
    complete_json,
    complete_text,
)
from ..prompts import PromptTemplate, load_template
from ..records import Scores, SourceText, StageResult, Triplet, utcnow
from ..store import Store
from .checks import reasoning_problems
from .config import STAGES, ConstructConfig
from .stages import PARSERS, SCHEMAS, copied_span


@dataclass
class Attempt:
    """One round of prompt + reasoning + validation + scores."""

    round: int
    prompt: str
    reasoning: str
    validation: dict[str, Any]
    scores: Scores | None
    problems: list[str]

    @property
    def rank(self) -> tuple[bool, bool, int]:
        return (not self.problems, bool(self.validation.get("coherent")),
                self.scores.total if self.scores else -1)


@dataclass
class RunSummary:
    run_id: str
    pending: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    errors: dict[str, str] = field(default_factory=dict)
    stopped: str = ""  # why the run ended early (every endpoint down); items stay pending
    llm_calls: int = 0
    cache_hits: int = 0
    elapsed_s: float = 0.0
    executor: str = "local"
    accounting: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "pending": self.pending, "statuses": dict(self.statuses),
                "errors": self.errors, "stopped": self.stopped, "llm_calls": self.llm_calls,
                "cache_hits": self.cache_hits, "elapsed_s": round(self.elapsed_s, 2),
                "executor": self.executor, "accounting": self.accounting, "totals": self.totals}


def judge_attempt(cfg: ConstructConfig, rnd: int, prompt: str, reasoning: str, article: str,
                  v: StageResult, s: StageResult) -> Attempt:
    """A round's verdict from its validation and score results and the LLM-free checks: every
    problem that keeps it from acceptance, in words (also rebuilt from stored stage results)."""
    problems: list[str] = []
    if copied := copied_span(prompt, article):
        problems.append(f"prompt copies the text verbatim (e.g. {copied!r})")
    if len(reasoning) < cfg.min_reasoning_chars:
        problems.append(f"reasoning too short: {len(reasoning)} < {cfg.min_reasoning_chars}")
    problems += reasoning_problems(prompt, reasoning, article, cfg.reasoning_checks)
    if not v.ok:
        problems.append(f"validation: {v.error}")
    elif not v.output["coherent"]:
        problems += [f"incoherent: {i}" for i in v.output["issues"]] or ["incoherent"]
        if v.output["suggestion"]:
            problems.append(f"suggestion: {v.output['suggestion']}")
    scores = Scores(**s.output["scores"]) if s.ok else None
    if scores is None:
        problems.append(f"scores: {s.error}")
    else:
        fails = scores.failures(cfg.min_each, cfg.min_sum)
        if fails:
            problems.append("low scores: " + ", ".join(fails))
            if s.output["comment"]:
                problems.append(f"reviewer: {s.output['comment']}")
    return Attempt(rnd, prompt, reasoning, v.output if v.ok else {}, scores, problems)


def triplet_id(source_id: str) -> str:
    return f"cw-{source_id}"


class ConstructPipeline:
    def __init__(self, store: Store, backend: Backend, config: ConstructConfig | None = None):
        self.store = store
        self.config = config or ConstructConfig()
        self.llm = backend if isinstance(backend, CachedBackend) else CachedBackend(backend, store)
        self.run_id: str | None = None
        self.scope_until: str | None = None  # texts stored after this wait for the next run
        cfg = self.config
        self.templates: dict[str, PromptTemplate] = {
            name: load_template(name, cfg.lang, cfg.template_dir)
            for name in (*STAGES, "feedback", "json_retry")}
        self.genre_listing = load_taxonomy().listing(cfg.lang)

    @property
    def template_hashes(self) -> dict[str, str]:
        return {n: t.sha256 for n, t in self.templates.items()}

    # -- one stage ---------------------------------------------------------------------------
    async def run_stage(self, stage: str, item_id: str, rnd: int, run_id: str,
                        **variables: Any) -> StageResult:
        """One stage for one item and round, under the completion policy: a truncated, looping
        or unusable answer is retried, then recorded as a failed stage with its reason."""
        tpl = self.templates[stage]
        params = self.config.stages[stage]
        tags = {stage: tpl.sha256}
        is_json = tpl.output == "json"
        if is_json:
            tags["json_retry"] = self.templates["json_retry"].sha256
        schema = SCHEMAS.get(stage) if is_json and self.config.structured_output else None
        req = ChatRequest.build(tpl.render(**variables), tags=tags,
                                temperature=params.temperature, max_tokens=params.max_tokens,
                                json_mode=is_json, seed=self.config.seed + rnd,
                                json_schema=schema, item=item_id, stage=stage)
        policy = CompletionPolicy(attempts=self.config.retries + 1, max_tokens_cap=params.cap)
        result = StageResult(item_id=item_id, stage=stage, round=rnd, template=tpl.ref,
                             template_hash=tpl.sha256, model=self.llm.model_id, run_id=run_id)
        try:
            if is_json:
                result.output, resps = await complete_json(
                    self.llm, req, PARSERS[stage], policy=policy,
                    retry_message=self.templates["json_retry"].user)
            else:
                result.output, resps = await complete_text(self.llm, req, PARSERS[stage],
                                                           policy=policy)
        except CompletionError as e:
            resps = e.responses
            result.ok, result.error, result.error_kind = False, e.reason, e.kind
            self.llm.accounting.unusable(stage, self.llm.model_id)
        result.cache_keys = [r.key or "" for r in resps]
        self.store.construct.put_stage(result)
        return result

    # -- one item ----------------------------------------------------------------------------
    def _article(self, text: str) -> tuple[str, bool]:
        n = self.config.max_article_chars
        if len(text) <= n:
            return text, False
        cut = "\n……（后文略）" if self.config.lang == "zh" else "\n... (rest omitted)"
        return text[:n] + cut, True

    async def process(self, src: SourceText, run_id: str) -> Triplet:
        cfg = self.config
        article, truncated = self._article(src.text)
        trip = Triplet(id=triplet_id(src.id), answer=src.text, source_id=src.id,
                       provenance=src.provenance, model=self.llm.model_id,
                       templates=self.template_hashes, run_id=run_id)
        if truncated:
            trip.reasons.append(f"article cut to {cfg.max_article_chars} chars in prompts")

        screen = await self.run_stage("screen", src.id, 0, run_id, article=article,
                                      title=src.provenance.title or "", genres=self.genre_listing)
        trip.screen = screen.output
        if not screen.ok:
            return self._finish(trip, "needs_review", f"screen: {screen.error}")
        trip.category, trip.genre = screen.output["category"], screen.output["genre"]
        q, c = screen.output["quality"], screen.output["creativity"]
        if min(q, c) < cfg.screen_threshold:
            return self._finish(trip, "rejected", f"screen: quality={q} creativity={c} "
                                                  f"< {cfg.screen_threshold}")
        genre_name = self._genre_name(trip.genre)

        best, trip.rounds = await self._best_attempt(src.id, 0, run_id, article, genre_name, "",
                                                     trip.reasons, "round")
        if best is None:
            return self._finish(trip, "needs_review", "no usable prompt and reasoning")
        trip.query, trip.thought = best.prompt, best.reasoning
        trip.validation, trip.scores = best.validation, best.scores
        if not best.problems:
            return self._finish(trip, "accepted", None)
        total = best.scores.total if best.scores else 0
        # an unparseable validation is not a verdict of incoherence: leave that to a human
        incoherent = best.validation.get("coherent") is False
        status = "rejected" if total < cfg.reject_below or incoherent else "needs_review"
        return self._finish(trip, status, "; ".join(best.problems))

    async def _best_attempt(self, item: str, round_base: int, run_id: str, article: str,
                            genre_name: str, base_feedback: str, reasons: list[str], label: str,
                            prompt: str | None = None) -> tuple[Attempt | None, int]:
        """Up to 1 + max_rounds rounds (stage rounds from `round_base`), each fed the previous
        round's problems after `base_feedback`; stops at the first round without problems.
        Returns the best attempt (None if no round gave a usable prompt and reasoning) and the
        number of rounds run; unusable rounds are noted in `reasons`."""
        best: Attempt | None = None
        feedback = base_feedback
        for i in range(self.config.max_rounds + 1):
            attempt = await self._attempt(item, round_base + i, run_id, article, genre_name,
                                          feedback, prompt=prompt)
            if isinstance(attempt, str):  # unusable output: the next round samples anew
                reasons.append(f"{label} {i}: {attempt}")
                continue
            if best is None or attempt.rank > best.rank:
                best = attempt
            if not attempt.problems:
                break
            feedback = base_feedback + self.templates["feedback"].render(
                issues="\n".join(f"- {p}" for p in attempt.problems))[-1]["content"]
        return best, i + 1

    def _genre_name(self, genre_key: str | None) -> str:
        genre = load_taxonomy().genres_by_key().get(genre_key or "")
        if genre:
            return getattr(genre, self.config.lang)
        return "文学" if self.config.lang == "zh" else "writing"

    async def refine(self, trip: Triplet, feedback: str, fields: list[str], *, run_id: str,
                     round_base: int) -> Triplet:
        """Rework a stored triplet from a reviewer's `feedback`: regenerate the prompt (and then
        the reasoning) when "prompt" is in `fields`, else the reasoning only; validate and score
        again; up to `max_rounds` further rounds on failures. Stage results are stored under
        rounds `round_base`, `round_base + 1`, ...; the returned triplet is NOT stored (the
        caller versions it). Unusable output gives status needs_review with the reason."""
        src_id = trip.source_id or trip.id
        article, _ = self._article(trip.answer)
        new = trip.model_copy(deep=True)
        new.reasons, new.run_id, new.model = [], run_id, self.llm.model_id
        new.templates = self.template_hashes
        base_feedback = self.templates["feedback"].render(
            issues=f"- {feedback.strip()}")[-1]["content"]
        keep_prompt = trip.query if "prompt" not in fields and trip.query else None
        best, rounds = await self._best_attempt(src_id, round_base, run_id, article,
                                                self._genre_name(trip.genre), base_feedback,
                                                new.reasons, "refinement round", keep_prompt)
        new.rounds = trip.rounds + rounds
        if best is None:
            new.status = "needs_review"
            new.reasons.append("refinement gave no usable prompt and reasoning")
            return new
        new.query, new.thought = best.prompt, best.reasoning
        new.validation, new.scores = best.validation, best.scores
        new.status = "accepted" if not best.problems else "needs_review"  # type: ignore[assignment]
        new.reasons += best.problems
        return new

    async def _attempt(self, item: str, rnd: int, run_id: str, article: str, genre_name: str,
                       feedback: str, prompt: str | None = None) -> Attempt | str:
        """One round; returns the error text when the model gave no usable prompt/reasoning.
        With `prompt` given, the prompt is kept and only the reasoning is regenerated."""
        cfg = self.config
        if prompt is None:
            p = await self.run_stage("reconstruct_prompt", item, rnd, run_id, article=article,
                                     genre_name=genre_name, feedback=feedback)
            if not p.ok:
                return f"prompt: {p.error}"
            prompt = p.output["prompt"]
        r = await self.run_stage("reasoning", item, rnd, run_id, prompt=prompt, article=article,
                                 feedback=feedback)
        if not r.ok:
            return f"reasoning: {r.error}"
        reasoning = r.output["reasoning"]
        v = await self.run_stage("validate", item, rnd, run_id, prompt=prompt,
                                 reasoning=reasoning, article=article)
        s = await self.run_stage("score", item, rnd, run_id, prompt=prompt, reasoning=reasoning,
                                 article=article)
        return judge_attempt(cfg, rnd, prompt, reasoning, article, v, s)

    def _finish(self, trip: Triplet, status: str, reason: str | None) -> Triplet:
        trip.status = status  # type: ignore[assignment]
        if reason:
            trip.reasons.append(reason)
        self.store.construct.put_triplet(trip)
        return trip

    # -- the run -----------------------------------------------------------------------------
    def pending(self, limit: int | None = None, redo: bool = False) -> Iterator[SourceText]:
        """Texts without a triplet, streamed from the store (bounded memory at any scale);
        within a run's scope only those stored when it started (`start_run(follow=False)`)."""
        items = self.store.corpus.iter_pending_sources(triplet_id(""), limit=limit, redo=redo)
        until = self.scope_until
        return items if until is None else (s for s in items if s.ingested_at <= until)

    def count_pending(self, limit: int | None = None, redo: bool = False) -> int:
        n = self.store.corpus.count_pending_sources(triplet_id(""), redo=redo)
        return min(n, limit) if limit is not None else n

    def start_run(self, follow: bool = False, **extra: Any) -> str:
        """Record a run. Its scope is the texts stored now: texts ingested while it runs wait
        for the next run, unless `follow` (then it takes them too)."""
        self.scope_until = None if follow else utcnow()
        self.run_id = self.store.runs.start_run("construct", {
            "config": self.config.model_dump(), "model": self.llm.model_id,
            "templates": self.template_hashes, "follow": follow,
            "scope_until": self.scope_until, **extra})
        return self.run_id

    def finish(self, summary: RunSummary) -> None:
        acc = self.llm.accounting
        summary.llm_calls, summary.cache_hits = self.llm.misses, self.llm.hits
        summary.accounting, summary.totals = acc.summary(), acc.totals()
        if summary.executor != "local":  # workers' calls reach the driver through accounting
            summary.llm_calls, summary.cache_hits = (summary.totals["calls"],
                                                     summary.totals["cache_hits"])
        self.store.runs.finish_run(summary.run_id, summary.as_dict())
