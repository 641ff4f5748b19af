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
from ..llm import Backend
from ..records import SourceText, StageResult, Triplet, utcnow
from ..store import Store
from .calls import ItemContext, StageCaller
from .config import ConstructConfig
from .gate import Gate, named_checks
from .health import score_health
from .verdict import Verdict, decide, screen_failure


@dataclass
class Attempt:
    """One round: the prompt and reasoning it made and the gate's verdict on them."""

    round: int
    prompt: str
    reasoning: str
    verdict: Verdict

    @property
    def problems(self) -> list[str]:
        return self.verdict.reasons

    @property
    def validation(self) -> dict[str, Any]:
        return self.verdict.validation

    @property
    def scores(self):
        return self.verdict.scores

    @property
    def rank(self) -> tuple[bool, bool, bool, float]:
        v = self.verdict
        return (v.status == "accepted", not v.checks, bool(v.validation.get("coherent")),
                v.total)


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
    gate_health: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "pending": self.pending, "statuses": dict(self.statuses),
                "errors": self.errors, "stopped": self.stopped, "llm_calls": self.llm_calls,
                "cache_hits": self.cache_hits, "elapsed_s": round(self.elapsed_s, 2),
                "executor": self.executor, "accounting": self.accounting, "totals": self.totals,
                "gate_health": self.gate_health}


def judge_attempt(cfg: ConstructConfig, rnd: int, prompt: str, reasoning: str, article: str,
                  v: StageResult, s: StageResult) -> Attempt:
    """A round's verdict rebuilt from its stored validation and score results (the LLM-free
    checks run again: they are cheap and deterministic)."""
    ctx = ItemContext(item_id=v.item_id, run_id=v.run_id or "", article=article)
    verdict = decide(named_checks(ctx, prompt, reasoning, cfg.checks), v.output if v.ok else None,
                     v.error, s.output if s.ok else None, s.error, min_each=cfg.min_each,
                     min_sum=cfg.min_sum, reject_below=cfg.reject_below, rule=cfg.score_rule)
    return Attempt(rnd, prompt, reasoning, verdict)


def triplet_id(source_id: str) -> str:
    return f"cw-{source_id}"


class ConstructPipeline:
    def __init__(self, store: Store, backend: Backend, config: ConstructConfig | None = None):
        self.store = store
        self.config = config or ConstructConfig()
        self.caller = StageCaller(store, backend, self.config)
        self.gate = Gate(self.caller)
        self.llm = self.caller.llm
        self.templates = self.caller.templates
        self.genre_listing = self.caller.genre_listing
        self.run_id: str | None = None
        self.scope_until: str | None = None  # texts stored after this wait for the next run

    @property
    def template_hashes(self) -> dict[str, str]:
        return self.caller.template_hashes

    async def run_stage(self, stage: str, item_id: str, rnd: int, run_id: str,
                        **variables: Any) -> StageResult:
        """One stage call outside a round (benchmarks, tools): see `StageCaller.call`."""
        ctx = ItemContext(item_id=item_id, run_id=run_id, article=variables.pop("article", ""),
                          title=variables.pop("title", ""))
        return await self.caller.call(stage, ctx, rnd, **variables)

    # -- one item ----------------------------------------------------------------------------
    def _article(self, text: str) -> tuple[str, bool]:
        n = self.config.max_article_chars
        if len(text) <= n:
            return text, False
        cut = "\n……（后文略）" if self.config.lang == "zh" else "\n... (rest omitted)"
        return text[:n] + cut, True

    def context(self, item_id: str, run_id: str, text: str, title: str | None = None,
                author: str | None = None, genre: str | None = None) -> tuple[ItemContext, bool]:
        """The item's context for its stage calls (and whether its text was cut for them)."""
        article, truncated = self._article(text)
        return ItemContext(item_id=item_id, run_id=run_id, article=article, title=title or "",
                           author=author or "", genre=genre,
                           genre_name=self._genre_name(genre)), truncated

    async def process(self, src: SourceText, run_id: str) -> Triplet:
        cfg = self.config
        ctx, truncated = self.context(src.id, run_id, src.text, src.provenance.title,
                                      src.provenance.author)
        trip = Triplet(id=triplet_id(src.id), answer=src.text, source_id=src.id,
                       provenance=src.provenance, model=self.llm.model_id,
                       templates=self.template_hashes, run_id=run_id)
        if truncated:
            trip.reasons.append(f"article cut to {cfg.max_article_chars} chars in prompts")

        screen = await self.caller.call("screen", ctx, 0)
        trip.screen = screen.output
        if not screen.ok:
            return self._finish(trip, "needs_review", f"screen: {screen.error}")
        trip.category, trip.genre = screen.output["category"], screen.output["genre"]
        low = screen_failure(screen.output, cfg.screen_threshold, cfg.score_rule)
        if low:
            return self._finish(trip, "rejected", low)
        ctx.genre, ctx.genre_name = trip.genre, self._genre_name(trip.genre)

        best, trip.rounds = await self._best_attempt(ctx, 0, "", trip.reasons, "round")
        if best is None:
            return self._finish(trip, "needs_review", "no usable prompt and reasoning")
        self._take(trip, best)
        if best.verdict.status == "accepted":
            return self._finish(trip, "accepted", None)
        return self._finish(trip, best.verdict.status, "; ".join(best.problems))

    @staticmethod
    def _take(trip: Triplet, best: Attempt) -> None:
        """The best attempt's prompt, reasoning and verdict onto the triplet."""
        v = best.verdict
        trip.query, trip.thought = best.prompt, best.reasoning
        trip.validation, trip.scores = v.validation, v.scores
        trip.expected_scores, trip.score_mass = v.expected, v.mass
        trip.score_confidence = v.confidence
        trip.score_rule, trip.checks = v.score_rule, v.checks + v.review_checks

    async def _best_attempt(self, ctx: ItemContext, round_base: int, base_feedback: str,
                            reasons: list[str], label: str, prompt: str | None = None
                            ) -> tuple[Attempt | None, int]:
        """Up to 1 + max_rounds rounds (stage rounds from `round_base`), each fed the previous
        round's problems (failed checks and low scores alike) after `base_feedback`; stops at
        the first accepted round. Returns the best attempt (None if no round gave a usable
        prompt and reasoning) and the number of rounds run; unusable rounds are noted in
        `reasons`."""
        best: Attempt | None = None
        feedback = base_feedback
        for i in range(self.config.max_rounds + 1):
            attempt = await self._attempt(ctx, round_base + i, feedback, prompt=prompt)
            if isinstance(attempt, str):  # unusable output: the next round samples anew
                reasons.append(f"{label} {i}: {attempt}")
                continue
            if best is None or attempt.rank > best.rank:
                best = attempt
            if attempt.verdict.status == "accepted":
                break
            feedback = base_feedback + self.caller.feedback(attempt.problems)
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
        ctx, _ = self.context(src_id, run_id, trip.answer, trip.provenance.title,
                              trip.provenance.author, trip.genre)
        new = trip.model_copy(deep=True)
        new.reasons, new.run_id, new.model = [], run_id, self.llm.model_id
        new.templates = self.template_hashes
        base_feedback = self.caller.feedback([feedback.strip()])
        keep_prompt = trip.query if "prompt" not in fields and trip.query else None
        best, rounds = await self._best_attempt(ctx, round_base, base_feedback, new.reasons,
                                                "refinement round", keep_prompt)
        new.rounds = trip.rounds + rounds
        if best is None:
            new.status = "needs_review"
            new.reasons.append("refinement gave no usable prompt and reasoning")
            return new
        self._take(new, best)
        # a refinement never rejects on its own: what is not accepted goes back to a human
        new.status = "accepted" if best.verdict.status == "accepted" else "needs_review"
        new.reasons += best.problems
        return new

    async def _attempt(self, ctx: ItemContext, rnd: int, feedback: str,
                       prompt: str | None = None) -> Attempt | str:
        """One round; returns the error text when the model gave no usable prompt/reasoning.
        With `prompt` given, the prompt is kept and only the reasoning is regenerated."""
        if prompt is None:
            p = await self.caller.call("reconstruct_prompt", ctx, rnd, feedback=feedback)
            if not p.ok:
                return f"prompt: {p.error}"
            prompt = p.output["prompt"]
        r = await self.caller.call("reasoning", ctx, rnd, prompt=prompt, feedback=feedback)
        if not r.ok:
            return f"reasoning: {r.error}"
        reasoning = r.output["reasoning"]
        return Attempt(rnd, prompt, reasoning, await self.gate.judge(ctx, rnd, prompt, reasoning))

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
        summary.gate_health = score_health(self.store.construct.score_rows(summary.run_id),
                                           warn_share=self.config.spread_warn_share)
        self.store.runs.finish_run(summary.run_id, summary.as_dict())
