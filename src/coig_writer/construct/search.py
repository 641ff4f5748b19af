"""Perplexity-guided reasoning search (REER / DeepWriter's local search, joined with our checks).

Per triplet: cut the reasoning into its decision segments; at each step ask the generator for
K rewrites of one segment (first person, planning voice; template `search_segment`); every
candidate reasoning must pass the LLM-free checks (copying the text, requirements, decision
kinds, length ratio), and those that pass are scored with the usefulness scorer (clipped mean
NLL of the text after prompt + reasoning); the best is kept when it lowers the NLL. The search
stops at `target_gain`, after `max_steps`, or after a full pass over the segments without a
gain. Every step is stored (candidate, NLL, problems, kept); LLM answers and scores go through
the store's cache, so a rerun after kill -9 replays finished work without asking again, and a
finished triplet is skipped. An improved reasoning becomes a new triplet version by
`model:<generator>` whose diff names the gain before and after.
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..llm import CachedBackend, ChatRequest, CompletionError, CompletionPolicy, complete_text
from ..llm.scoring import LogprobScorer, clipped_mean_nll
from ..prompts import load_template
from ..records import Triplet
from ..store import Store
from .checks import reasoning_problems
from .config import ConstructConfig, SearchConfig
from .stages import StageOutputError, clean_text
from .usefulness import UsefulnessConfig, prefix_for, windows

_SENTENCE = re.compile(r"(?<=[。！？；!?;])|(?<=[.])\s+")
_LABEL = re.compile(r"^\s*(第\s*\d+\s*段|segment\s*\d+)\s*[:：]\s*", re.I)


def segments(reasoning: str, min_chars: int = 30) -> list[str]:
    """Consecutive pieces covering the reasoning exactly (joined they give it back): its lines,
    or its sentences when it is one line; pieces shorter than `min_chars` join the next."""
    body = reasoning.strip("\n")
    if "\n" in body:
        cuts = [m.end() for m in re.finditer(r"\n+", reasoning)]
    else:
        cuts = [m.end() for m in _SENTENCE.finditer(reasoning) if 0 < m.end() < len(reasoning)]
    pieces, start = [], 0
    for c in [*cuts, len(reasoning)]:
        if c > start:
            pieces.append(reasoning[start:c])
            start = c
    merged: list[str] = []
    for p in pieces:
        if merged and len(merged[-1].strip()) < min_chars:
            merged[-1] += p
        else:
            merged.append(p)
    if len(merged) > 1 and len(merged[-1].strip()) < min_chars:
        merged[-2] += merged.pop()
    return merged or [reasoning]


def replace_segment(segs: list[str], i: int, text: str) -> list[str]:
    """The segments with piece i's content replaced, its surrounding whitespace kept."""
    old = segs[i]
    lead = old[:len(old) - len(old.lstrip())]
    trail = old[len(old.rstrip()):]
    return [*segs[:i], lead + text.strip() + trail, *segs[i + 1:]]


def parse_segment(text: str) -> str:
    t = _LABEL.sub("", clean_text(text)).strip().strip("【】").strip()
    if not t:
        raise StageOutputError("empty segment")
    return t


@dataclass
class SearchSummary:
    searched: int = 0
    improved: int = 0
    skipped: int = 0
    steps: int = 0
    rejected_by_checks: int = 0
    seconds: float = 0.0
    outcomes: list[dict[str, Any]] = field(default_factory=list)


class ReasoningSearch:
    """One search configuration: generator, scorer, template, settings."""

    def __init__(self, store: Store, generator: Any, scorer: LogprobScorer,
                 config: ConstructConfig | None = None, usefulness: UsefulnessConfig | None = None):
        self.store = store
        self.cfg = config or ConstructConfig()
        self.s: SearchConfig = self.cfg.search
        self.llm = generator if isinstance(generator, CachedBackend) else CachedBackend(generator,
                                                                                          store)
        self.scorer = scorer
        self.ucfg = usefulness or UsefulnessConfig()
        self.template = load_template("search_segment", self.cfg.lang, self.cfg.template_dir)
        self.repo = store.search
        self.key = hashlib.sha256(json.dumps({
            "generator": self.llm.model_id, "template": self.template.sha256,
            "scorer": scorer.model_id, "scorer_template": scorer.template_hash,
            "usefulness": self.ucfg.settings_hash(), "checks": self.cfg.checks.model_dump(),
            "search": self.s.model_dump(exclude={"enabled", "scorer", "scorer_model",
                                                 "scorer_base_url"}),
            "seed": self.cfg.seed}, sort_keys=True).encode()).hexdigest()[:16]

    async def nll(self, t: Triplet, reasoning: str) -> float:
        prefix = prefix_for(self.scorer, t.query, reasoning, self.ucfg)
        pairs = [(prefix + ctx, piece) for ctx, piece in windows(
            t.answer, self.ucfg.window_chars, self.ucfg.overlap_chars)]
        pooled = [v for lps in await self.scorer.batch_token_logprobs(pairs) for v in lps]
        return clipped_mean_nll(pooled, self.ucfg.clip_min)

    def problems(self, t: Triplet, reasoning: str) -> list[str]:
        out = reasoning_problems(t.query, reasoning, t.answer, self.cfg.checks)
        least = self.cfg.checks.min_reasoning_chars
        if least is not None and len(reasoning) < least:
            out.append(f"reasoning too short: {len(reasoning)} < {least}")
        return out

    async def candidates(self, t: Triplet, segs: list[str], i: int, step: int) -> list[str | None]:
        marked = "".join(f"【{s.strip()}】{s[len(s.rstrip()):]}" if j == i else s
                         for j, s in enumerate(segs))
        msgs = self.template.render(prompt=t.query, article=t.answer[:self.cfg.max_article_chars],
                                    reasoning=marked, segment=segs[i].strip(), index=i + 1,
                                    count=len(segs))
        policy = CompletionPolicy(attempts=self.cfg.retries + 1, max_tokens_cap=4 * self.s.max_tokens)

        async def one(k: int) -> str | None:
            req = ChatRequest.build(msgs, tags={"search_segment": self.template.sha256},
                                    temperature=self.s.temperature, max_tokens=self.s.max_tokens,
                                    seed=self.cfg.seed + step * self.s.candidates + k,
                                    item=t.id, stage="search")
            try:
                text, _ = await complete_text(self.llm, req, parse_segment, policy=policy)
                return text
            except CompletionError:
                return None

        return list(await asyncio.gather(*(one(k) for k in range(self.s.candidates))))

    async def search(self, t: Triplet) -> dict[str, Any] | None:
        """Search one triplet (None when it was searched with this configuration before)."""
        version = self.store.review.triplet_version(t.id)
        done = self.repo.result(t.id, self.key)
        if done is not None and done["status"] == "done":
            return None
        if done is not None:  # killed between storing the outcome and the version: finish it
            return self._save(t, done["from_version"], done)
        t0 = time.perf_counter()
        segs = segments(t.thought, self.s.min_segment_chars)
        nll_prompt = await self.nll(t, "")
        nll_before = cur = await self.nll(t, t.thought)
        idle = steps = rejected = kept_n = 0
        for step in range(self.s.max_steps):
            if self.s.target_gain is not None and nll_prompt - cur >= self.s.target_gain:
                break
            i = step % len(segs)
            rows, best = [], None
            for k, text in enumerate(await self.candidates(t, segs, i, step)):
                new = replace_segment(segs, i, text) if text else segs
                probs = ["no usable answer"] if text is None else self.problems(t, "".join(new))
                score = None if probs else await self.nll(t, "".join(new))
                rejected += bool(probs)
                rows.append({"step": step, "cand": k, "segment": i, "candidate": text or "",
                             "nll": score, "problems": probs, "kept": False})
                if score is not None and (best is None or score < best[0]):
                    best = (score, k, new)
            steps += 1
            if best is not None and cur - best[0] > self.s.min_improvement:
                cur, segs, idle, kept_n = best[0], best[2], 0, kept_n + 1
                rows[best[1]]["kept"] = True
            else:
                idle += 1
            self.repo.put_steps(t.id, self.key, rows)
            if idle >= len(segs):
                break
        out = {"triplet_id": t.id, "nll_prompt": nll_prompt, "nll_before": nll_before,
               "nll_after": cur, "gain_before": nll_prompt - nll_before,
               "gain_after": nll_prompt - cur, "steps": steps, "kept": kept_n,
               "rejected_by_checks": rejected, "segments": len(segs),
               "reasoning": "".join(segs), "seconds": round(time.perf_counter() - t0, 2)}
        self.repo.put_result(t.id, self.key, "saving", version, None, out)
        return self._save(t, version, out)

    def _save(self, t: Triplet, from_version: int, out: dict[str, Any]) -> dict[str, Any]:
        """The improved reasoning as the next version (once), then the outcome marked done."""
        to_version = None
        editor = f"model:{self.llm.model_id}"
        now = self.store.review.triplet_version(t.id)
        last = self.store.review.versions(t.id)[-1] if now > from_version else None
        if last and last["editor"] == editor and t.thought == out["reasoning"]:
            to_version = now  # the version was written before a kill: only the mark is missing
        elif out["kept"] and out["reasoning"] != t.thought:
            new = t.model_copy(deep=True)
            new.thought = out["reasoning"]
            new.reasons = [*t.reasons, f"reasoning search: usefulness gain "
                           f"{out['gain_before']:+.3f} -> {out['gain_after']:+.3f} in "
                           f"{out['steps']} steps ({out['kept']} kept), scorer "
                           f"{self.scorer.model_id}; six-dimension scores are of v{from_version}"]
            head = (f"# reasoning search by model:{self.llm.model_id}: usefulness gain "
                    f"{out['gain_before']:+.3f} -> {out['gain_after']:+.3f} (clipped NLL "
                    f"{out['nll_before']:.3f} -> {out['nll_after']:.3f}), {out['steps']} steps\n")
            diff = head + "\n".join(difflib.unified_diff(
                t.thought.splitlines(), new.thought.splitlines(), f"thought@v{from_version}",
                f"thought@v{from_version + 1}", lineterm="")) + "\n"
            to_version = self.store.review.save_edit(new, from_version, editor, diff)
            if to_version is not None:
                self.store.usefulness.put_usefulness(
                    t.id, to_version, self.scorer.model_id, self.scorer.template_hash,
                    self.ucfg.settings_hash(), t.genre,
                    {"triplet_id": t.id, "version": to_version, "genre": t.genre,
                     "category": t.category, "scorer": self.scorer.model_id,
                     "template_hash": self.scorer.template_hash, "nll_prompt": out["nll_prompt"],
                     "nll_own": out["nll_after"], "nll_control": None, "gain": out["gain_after"],
                     "gain_vs_control": None, "source": "reasoning search"})
        self.repo.put_result(t.id, self.key, "done", from_version, to_version, out)
        return {**out, "to_version": to_version}


async def run_search(store: Store, search: ReasoningSearch, *, status: str | None = "accepted",
                     ids: list[str] | None = None, limit: int | None = None,
                     on_item: Callable[[Triplet, dict[str, Any] | None], None] | None = None
                     ) -> SearchSummary:
    """Search every triplet of `status` (or the given ids), one at a time."""
    summary = SearchSummary()
    t0 = time.perf_counter()
    todo = [t for t in store.construct.iter_triplets(status) if ids is None or t.id in ids][:limit]
    for t in todo:
        if not t.thought.strip() or not t.answer.strip():
            summary.skipped += 1
            continue
        out = await search.search(t)
        if out is None:
            summary.skipped += 1
        else:
            summary.searched += 1
            summary.improved += out.get("to_version") is not None
            summary.steps += out["steps"]
            summary.rejected_by_checks += out["rejected_by_checks"]
            summary.outcomes.append(out)
        if on_item:
            on_item(t, out)
    summary.seconds = time.perf_counter() - t0
    return summary


async def search_run_output(store: Store, generator: Any, cfg: ConstructConfig, run_id: str,
                            usefulness: UsefulnessConfig | None = None) -> SearchSummary | None:
    """The optional stage (`search.enabled`): search the accepted triplets of one construct run
    with the scorer the config's `search` section names (None when there are none)."""
    from ..llm.scoring import CachedScorer, make_scorer

    ids = [t.id for t in store.construct.iter_triplets("accepted") if t.run_id == run_id]
    if not ids:
        return None
    scorer = CachedScorer(make_scorer(cfg.search.scorer, model=cfg.search.scorer_model,
                                      base_url=cfg.search.scorer_base_url), store)
    search = ReasoningSearch(store, generator, scorer, cfg, usefulness)
    try:
        return await run_search(store, search, ids=ids)
    finally:
        await search.llm.aclose()
        await scorer.aclose()
