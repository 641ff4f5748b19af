"""The refinement worker: takes items reviewers sent back, has the construction pipeline redo
the prompt and/or reasoning with the reviewer's feedback, stores the result as a new version
(author `model:<id>`, linked to the feedback) and returns the item to review.

Resumable: every LLM answer is in the content-addressed cache before it is used, and a
refinement's version is written in the same transaction that closes the request, so a rerun
after kill -9 re-sends no finished call and writes no second version.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..construct.pipeline import ConstructPipeline
from ..llm import LLMError
from ..records import Triplet
from ..store import Store
from .service import REFINABLE, unified

log = logging.getLogger("coig_writer.review.refine")
ROUND_STRIDE = 100  # refinement n writes its stage results from round n * ROUND_STRIDE


@dataclass
class RefineSummary:
    run_id: str
    pending: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: dict[str, str] = field(default_factory=dict)
    llm_calls: int = 0
    cache_hits: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "pending": self.pending, "outcomes": dict(self.outcomes),
                "errors": self.errors, "llm_calls": self.llm_calls, "cache_hits": self.cache_hits}


async def refine_one(store: Store, pipe: ConstructPipeline, ref: dict[str, Any], run_id: str,
                     max_attempts: int = 3) -> str:
    """Work one refinement request; returns its outcome: done, failed or retry."""
    before = Triplet.model_validate_json(ref["before"])
    fields = [f for f in ref["fields"] if f in REFINABLE] or list(REFINABLE)
    base = ref["round"] * ROUND_STRIDE
    store.review.refinement_attempt(ref["id"])
    editor = f"model:{pipe.llm.model_id}"
    try:
        new = await pipe.refine(before, ref["feedback"], fields, run_id=run_id, round_base=base)
    except LLMError as e:  # the backend failed: retry on the next run, then give up
        if ref["attempts"] + 1 < max_attempts:
            store.review.refinement_attempt(ref["id"], f"attempt {ref['attempts'] + 1}: {e}"[:500])
            return "retry"
        return _close(store, ref, None, editor, "failed", f"backend error: {e}"[:500], [])
    except (ValueError, KeyError) as e:
        return _close(store, ref, None, editor, "failed",
                      f"refinement error: {type(e).__name__}: {e}"[:500], [])
    keys = [k for s in store.construct.stages_for(before.source_id or before.id)
            if base <= s.round < base + ROUND_STRIDE for k in s.cache_keys if k]
    changed = [f for f in ("query", "thought", "answer") if getattr(new, f) != getattr(before, f)]
    if not changed:
        why = "; ".join(new.reasons[-2:]) or "the model changed nothing"
        return _close(store, ref, None, editor, "failed", why, keys)
    new.id, new.source_id = before.id, before.source_id
    new.pipeline_status, new.review_status = new.status, None
    new.reasons.append(f"refined from v{ref['from_version']} after feedback by {ref['reviewer']} "
                       f"(review {ref['review_id']})")
    diff = "".join(unified(getattr(before, f), getattr(new, f), f"{f}@v{ref['from_version']}",
                           f"{f}@refinement{ref['round']}") for f in changed)
    reason = "" if new.status == "accepted" else f"pipeline says {new.status}: " + \
        "; ".join(new.reasons[:-1])[-400:]
    return _close(store, ref, new, editor, "done", reason, keys, diff)


def _close(store: Store, ref: dict[str, Any], new: Triplet | None, editor: str, status: str,
           reason: str, keys: list[str], diff: str = "") -> str:
    store.review.finish_refinement(ref["id"], new, editor, diff, status, reason,
                            editor.removeprefix("model:"), keys)
    store.auth.audit(editor, "refinement", ref["item_id"], f"{status}: {reason}"[:500])
    return status


async def refine_pending(store: Store, pipe: ConstructPipeline, *, limit: int | None = None,
                         concurrency: int = 2, max_attempts: int = 3,
                         on_item: Callable[[str, str], None] | None = None) -> RefineSummary:
    """Work every open refinement request (pending, or running when a worker died)."""
    todo = [r for r in store.review.refinements() if r["status"] in ("pending", "running")]
    todo = todo[:limit] if limit is not None else todo
    run_id = store.runs.start_run("refine", {"model": pipe.llm.model_id, "requests": len(todo),
                                        "templates": pipe.template_hashes})
    summary = RefineSummary(run_id=run_id, pending=len(todo))
    sem = asyncio.Semaphore(max(1, concurrency))
    hits0, miss0 = pipe.llm.hits, pipe.llm.misses

    async def one(ref: dict[str, Any]) -> None:
        async with sem:
            try:
                out = await refine_one(store, pipe, ref, run_id, max_attempts)
            except Exception as e:  # keep the other requests going; this one stays open
                log.exception("refinement %s failed", ref["id"])
                out = "retry"
                summary.errors[ref["item_id"]] = f"{type(e).__name__}: {e}"[:300]
                store.review.refinement_attempt(ref["id"], summary.errors[ref["item_id"]])
        summary.outcomes[out] += 1
        if on_item:
            on_item(ref["item_id"], out)

    await asyncio.gather(*(one(r) for r in todo))
    summary.llm_calls, summary.cache_hits = pipe.llm.misses - miss0, pipe.llm.hits - hits0
    store.runs.finish_run(run_id, summary.as_dict())
    return summary


async def refine_loop(store: Store, pipe: ConstructPipeline, interval: float = 5.0) -> None:
    """Background worker for `review serve --refine`: works open requests every `interval` s."""
    try:
        while True:
            try:
                if any(r["status"] in ("pending", "running") for r in store.review.refinements()):
                    await refine_pending(store, pipe)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("refinement worker error")
            await asyncio.sleep(interval)
    finally:
        await pipe.llm.aclose()
