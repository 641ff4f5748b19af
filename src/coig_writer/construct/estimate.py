"""Predict the calls, tokens and cost of constructing the pending texts before a run.

Per stage: calls = pending items x (1 for screen, rounds for the others, where rounds is the
mean observed in finished triplets or 1 + max_rounds / 2 without any); prompt tokens = rendered
template length plus the text (characters / chars-per-token, 1.5 for Chinese, 4 for English by
default, or the ratio observed in cached calls); completion tokens = the observed mean per stage
or the stage's max_tokens.
"""

from __future__ import annotations

import json
from statistics import mean
from typing import Any

from ..genres import load_taxonomy
from ..llm.accounting import cost
from ..prompts import load_template
from ..store import Store
from .config import STAGES, ConstructConfig


def _observed(store: Store) -> tuple[dict[str, list[int]], float | None, int]:
    """Completion tokens per stage and characters per prompt token from cached calls."""
    completion: dict[str, list[int]] = {}
    chars, toks, n = 0, 0, 0
    for stage, request, usage in store.cache.stage_usage_rows():
        u = json.loads(usage)
        if not u.get("prompt_tokens"):
            continue
        n += 1
        completion.setdefault(stage, []).append(int(u.get("completion_tokens") or 0))
        chars += sum(len(m["content"]) for m in json.loads(request)["messages"])
        toks += int(u["prompt_tokens"])
    return completion, (chars / toks if toks else None), n


def estimate(store: Store, cfg: ConstructConfig, model: str,
             prices: dict[str, dict[str, float]], limit: int | None = None) -> dict[str, Any]:
    lengths = [min(len(s.text), cfg.max_article_chars)
               for s in store.corpus.iter_pending_sources("cw-", limit=limit)]
    completion, cpt, calib = _observed(store)
    cpt = cpt or (1.5 if cfg.lang == "zh" else 4.0)
    rounds = [t.rounds for t in store.construct.iter_triplets() if t.rounds]
    mean_rounds = mean(rounds) if rounds else 1 + cfg.max_rounds / 2
    n, total_text = len(lengths), sum(lengths)
    rows = []
    for stage in STAGES:
        tpl = load_template(stage, cfg.lang, cfg.template_dir)
        per_call = len(tpl.system) + len(tpl.user)
        # screen lists the genres; validate and score quote a prompt and a reasoning
        extra = {"screen": len(load_taxonomy().listing(cfg.lang)), "validate": 1500,
                 "score": 1500, "reasoning": 300}.get(stage, 0)
        calls = n * (1 if stage == "screen" else mean_rounds)
        prompt_tok = calls * (per_call + extra) / cpt + (total_text / cpt) * (calls / n if n else 0)
        comp = mean(completion[stage]) if completion.get(stage) else cfg.stages[stage].max_tokens
        rows.append({"stage": stage, "calls": calls, "prompt_tokens": prompt_tok,
                     "completion_tokens": calls * comp})
    tot = {k: sum(r[k] for r in rows) for k in ("calls", "prompt_tokens", "completion_tokens")}
    return {"items": n, "stages": rows, **tot, "calibration_calls": calib,
            "cost_usd": cost(prices, model, int(tot["prompt_tokens"]),
                             int(tot["completion_tokens"]))}
