"""Usefulness of a reasoning: how much more predictable the text becomes when a base model has
read it (the REER / DeepWriter measure).

For a triplet (x prompt, z reasoning, y text) the scorer reads x in its chat template, then
`<think>\\n` z `\\n</think>\\n\\n`, then y; each token of y gets its log-probability, clipped to
[clip_min, 0] (REER: [-2, 0]), and their mean negated is the clipped mean NLL (lower: the text
is more predictable). Three conditions:

- `nll_prompt`: empty think block (prompt only),
- `nll_own`: the triplet's own reasoning,
- `nll_control`: the reasoning of another triplet of the same genre (else category, else any),
  chosen deterministically by hash, so that "any reasoning at all" is told apart from "this
  reasoning".

`gain = nll_prompt - nll_own` and `gain_vs_control = nll_control - nll_own`; positive gains
mean the reasoning helps. Long texts are scored in windows: the text is cut into consecutive
pieces of at most `window_chars` characters (at a line or sentence end where one falls in the
second half of the window); each piece is scored after the same prompt and think block plus
the `overlap_chars` characters of text before it, and the token log-probabilities of all pieces
are pooled before clipping and averaging. Choose `window_chars` so that prompt + reasoning +
overlap + window fit the scorer's context (about 1.5 characters per token for Chinese,
4 for English); a prefix that still does not fit is cut from the left by the scorer.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from ..llm.scoring import LogprobScorer, clipped_mean_nll
from ..records import Triplet
from ..store import Store

SENTENCE_ENDS = "\n。！？!?；;…."


class UsefulnessConfig(BaseModel):
    """Usefulness scoring and gating (the `usefulness:` section of a construct config)."""

    min_usefulness_gain: float | None = Field(
        None, description="with --gate: accepted items whose gain (nll_prompt - nll_own) is "
                          "below this go to needs_review")
    clip_min: float = Field(-2.0, description="token log-probabilities are clipped to "
                                              "[clip_min, 0] (REER: -2)")
    window_chars: int = Field(2000, gt=0, description="longest text piece scored at once")
    overlap_chars: int = Field(200, ge=0, description="text before a piece kept as its context")
    think_open: str = "<think>\n"
    think_close: str = "\n</think>\n\n"

    def settings_hash(self) -> str:
        data = self.model_dump(exclude={"min_usefulness_gain"})
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def windows(text: str, window_chars: int, overlap_chars: int) -> list[tuple[str, str]]:
    """(context, piece) pairs covering `text` once, in order; context is the text just before."""
    out, start = [], 0
    while start < len(text):
        end = min(len(text), start + window_chars)
        if end < len(text):
            cut = max(text.rfind(c, start + window_chars // 2, end) for c in SENTENCE_ENDS)
            if cut >= 0:
                end = cut + 1
        out.append((text[max(0, start - overlap_chars):start], text[start:end]))
        start = end
    return out


def prefix_for(scorer: LogprobScorer, prompt: str, reasoning: str, cfg: UsefulnessConfig) -> str:
    return scorer.chat_prompt(prompt) + cfg.think_open + reasoning + cfg.think_close


def choose_control(t: Triplet, pool: Sequence[Triplet]) -> Triplet | None:
    """Another triplet's reasoning: same genre, else same category, else any; among them the
    one with the smallest sha256(own id + other id), so reruns pick the same one."""
    others = [o for o in pool if o.id != t.id and o.thought.strip() and o.thought != t.thought]
    for same in ((lambda o: t.genre and o.genre == t.genre),
                 (lambda o: t.category and o.category == t.category), (lambda o: True)):
        cands = [o for o in others if same(o)]
        if cands:
            return min(cands, key=lambda o: hashlib.sha256(f"{t.id}\0{o.id}".encode()).hexdigest())
    return None


async def score_triplet(scorer: LogprobScorer, t: Triplet, control: Triplet | None,
                        cfg: UsefulnessConfig) -> dict[str, Any]:
    """The three clipped mean NLLs of `t.answer` and the gains, in one batched scorer call."""
    pieces = windows(t.answer, cfg.window_chars, cfg.overlap_chars)
    conds = {"prompt": "", "own": t.thought}
    if control is not None:
        conds["control"] = control.thought
    pairs, owner = [], []
    for name, reasoning in conds.items():
        prefix = prefix_for(scorer, t.query, reasoning, cfg)
        for ctx, piece in pieces:
            pairs.append((prefix + ctx, piece))
            owner.append(name)
    t0 = time.perf_counter()
    lps = await scorer.batch_token_logprobs(pairs)
    pooled: dict[str, list[float]] = {n: [] for n in conds}
    for name, values in zip(owner, lps, strict=True):
        pooled[name].extend(values)
    nll = {n: clipped_mean_nll(v, cfg.clip_min) for n, v in pooled.items()}
    control_nll = nll.get("control")
    return {
        "nll_prompt": nll["prompt"], "nll_own": nll["own"], "nll_control": control_nll,
        "gain": nll["prompt"] - nll["own"],
        "gain_vs_control": None if control_nll is None else control_nll - nll["own"],
        "control_id": control.id if control else None,
        "tokens": len(pooled["own"]), "windows": len(pieces), "clip_min": cfg.clip_min,
        "seconds": round(time.perf_counter() - t0, 3)}


def gate_reason(record: dict[str, Any], cfg: UsefulnessConfig) -> str | None:
    """The named reason when the gain is below `min_usefulness_gain`, else None."""
    if cfg.min_usefulness_gain is None or record["gain"] >= cfg.min_usefulness_gain:
        return None
    return f"usefulness_gain={record['gain']:.3f}<{cfg.min_usefulness_gain}"


@dataclass
class UsefulnessSummary:
    scored: int = 0
    skipped: int = 0
    gated: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cache_hits: int = 0


async def run_usefulness(store: Store, scorer: LogprobScorer, cfg: UsefulnessConfig, *,
                         status: str | None = "accepted", redo: bool = False, gate: bool = False,
                         limit: int | None = None, concurrency: int = 1,
                         on_item: Callable[[Triplet, dict[str, Any] | None], None] | None = None
                         ) -> UsefulnessSummary:
    """Score every triplet of `status` (None: all) not yet scored in its current version under
    this scorer, template and settings, `concurrency` triplets in flight (more than 1 pays off
    with a server scorer). Each result is committed as soon as it is known, so a killed run
    resumes where it stopped. With `gate`, accepted items below the threshold become
    needs_review with the reason named."""
    pool = list(store.construct.iter_triplets(None))
    todo = [t for t in pool if status is None or t.status == status][:limit]
    settings = cfg.settings_hash()
    summary = UsefulnessSummary()
    sem = asyncio.Semaphore(max(1, concurrency))
    t0 = time.perf_counter()

    async def one(t: Triplet) -> None:
        version = store.review.triplet_version(t.id)
        key = (t.id, version, scorer.model_id, scorer.template_hash, settings)
        if not t.answer.strip() or (not redo and store.usefulness.has_usefulness(*key)):
            summary.skipped += 1
            record = store.usefulness.usefulness(t.id)
            if record is not None and record.get("scorer") != scorer.model_id:
                record = None  # scored since by another scorer: do not gate on its scale
        else:
            async with sem:
                record = await score_triplet(scorer, t, choose_control(t, pool), cfg)
            record.update({"triplet_id": t.id, "version": version, "genre": t.genre,
                           "category": t.category, "scorer": scorer.model_id,
                           "template_hash": scorer.template_hash, "settings": settings})
            store.usefulness.put_usefulness(*key[:4], settings, t.genre, record)
            summary.scored += 1
        if gate and record is not None and t.status == "accepted":
            reason = gate_reason(record, cfg)
            if reason:
                t.status = "needs_review"
                if reason not in t.reasons:
                    t.reasons.append(reason)
                store.construct.put_triplet(t)
                summary.gated.append(t.id)
        if on_item:
            on_item(t, record)

    await asyncio.gather(*(one(t) for t in todo))
    summary.seconds = time.perf_counter() - t0
    summary.cache_hits = getattr(scorer, "hits", 0)
    return summary


def distribution(rows: Sequence[dict[str, Any]], by: str = "genre",
                 min_gain: float | None = None) -> list[dict[str, Any]]:
    """Per group (and `all`): count, mean / median / min / max of gain, mean gain over the
    control, share with a positive gain, share below `min_gain`."""
    import statistics

    latest: dict[str, dict[str, Any]] = {}
    for r in rows:  # the newest record per triplet
        latest[r["triplet_id"]] = r
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in latest.values():
        groups.setdefault(r.get(by) or "(unknown)", []).append(r)
    out = []
    for name, rs in sorted(groups.items()) + [("all", list(latest.values()))]:
        if not rs:
            continue
        gains = [r["gain"] for r in rs]
        ctrl = [r["gain_vs_control"] for r in rs if r.get("gain_vs_control") is not None]
        out.append({
            "group": name, "count": len(rs), "mean_gain": statistics.fmean(gains),
            "median_gain": statistics.median(gains), "min_gain": min(gains),
            "max_gain": max(gains),
            "mean_gain_vs_control": statistics.fmean(ctrl) if ctrl else None,
            "mean_nll_own": statistics.fmean(r["nll_own"] for r in rs),
            "positive": sum(g > 0 for g in gains) / len(gains),
            "below_min": (sum(g < min_gain for g in gains) / len(gains)
                          if min_gain is not None else None)})
    return out
