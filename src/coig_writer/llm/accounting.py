"""Token, latency and cost accounting per stage and model, with an optional price table."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .base import ChatResponse, LLMError


@dataclass
class _Line:
    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0  # summed over the calls whose server reported the figure
    cached_reported: int = 0  # calls with a reported cached-token figure
    completion_tokens: int = 0
    truncated: int = 0
    unusable: int = 0
    latencies: list[float] = field(default_factory=list)


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))], 3)


def load_prices(path: str | Path | None) -> dict[str, dict[str, float]]:
    """A YAML map model -> {input: USD per million prompt tokens, output: ... completion}.
    Keys may be the served name (`gpt-4o-mini`) or the model id (`openai:gpt-4o-mini`)."""
    if not path:
        return {}
    try:
        data = yaml.safe_load(Path(path).read_text("utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise LLMError(f"{path}: cannot read price table: {e}") from None
    out = {}
    for model, p in data.items():
        if not isinstance(p, dict) or not {"input", "output"} <= set(p):
            raise LLMError(f"{path}: {model}: expected {{input: ..., output: ...}} per million")
        out[str(model)] = {"input": float(p["input"]), "output": float(p["output"])}
    return out


def price_for(prices: dict[str, dict[str, float]], model_id: str) -> dict[str, float] | None:
    return prices.get(model_id) or prices.get(model_id.split(":", 1)[-1])


def cost(prices: dict[str, dict[str, float]], model_id: str, prompt_tokens: int,
         completion_tokens: int) -> float | None:
    p = price_for(prices, model_id)
    if p is None:
        return None
    return (prompt_tokens * p["input"] + completion_tokens * p["output"]) / 1e6


class Accounting:
    """Collects every answer a run used; `summary()` gives one row per (stage, model)."""

    def __init__(self, prices: dict[str, dict[str, float]] | None = None):
        self.prices = prices or {}
        self.lines: dict[tuple[str, str], _Line] = defaultdict(_Line)

    def record(self, stage: str | None, model: str, resp: ChatResponse) -> None:
        line = self.lines[(stage or "-", model)]
        if resp.cached:
            line.cache_hits += 1
            return
        line.calls += 1
        line.prompt_tokens += resp.prompt_tokens
        cached = resp.cached_prompt_tokens
        if cached is not None:
            line.cached_tokens += cached
            line.cached_reported += 1
        line.completion_tokens += resp.completion_tokens
        line.truncated += resp.truncated
        line.latencies.append(resp.latency_s)

    def unusable(self, stage: str | None, model: str) -> None:
        self.lines[(stage or "-", model)].unusable += 1

    def merge(self, rows: list[dict[str, Any]]) -> None:
        """Add rows of another accounting's `summary()` (e.g. from a Ray worker)."""
        for r in rows:
            line = self.lines[(r["stage"], r["model"])]
            for k in ("calls", "cache_hits", "prompt_tokens", "completion_tokens", "truncated",
                      "unusable"):
                setattr(line, k, getattr(line, k) + r[k])
            if r.get("cached_prompt_tokens") is not None:
                line.cached_tokens += r["cached_prompt_tokens"]
                line.cached_reported += r.get("cached_reported_calls", r["calls"])
            line.latencies += r.get("_latencies", [])

    def summary(self, with_latencies: bool = False) -> list[dict[str, Any]]:
        rows = []
        for (stage, model), ln in sorted(self.lines.items()):
            row: dict[str, Any] = {
                "stage": stage, "model": model, "calls": ln.calls, "cache_hits": ln.cache_hits,
                "prompt_tokens": ln.prompt_tokens,
                "cached_prompt_tokens": ln.cached_tokens if ln.cached_reported else None,
                "cached_share": cached_share(ln.cached_tokens if ln.cached_reported else None,
                                             ln.prompt_tokens),
                "cached_reported_calls": ln.cached_reported,
                "completion_tokens": ln.completion_tokens,
                "truncated": ln.truncated, "unusable": ln.unusable,
                "latency_p50_s": _pct(ln.latencies, 0.5), "latency_p95_s": _pct(ln.latencies, 0.95),
                "cost_usd": cost(self.prices, model, ln.prompt_tokens, ln.completion_tokens)}
            if with_latencies:
                row["_latencies"] = ln.latencies
            rows.append(row)
        return rows

    def totals(self) -> dict[str, Any]:
        rows = self.summary()
        costs = [r["cost_usd"] for r in rows if r["cost_usd"] is not None]
        out = {k: sum(r[k] for r in rows) for k in
               ("calls", "cache_hits", "prompt_tokens", "completion_tokens", "truncated",
                "unusable")}
        reported = [r["cached_prompt_tokens"] for r in rows if r["cached_prompt_tokens"] is not None]
        cached = sum(reported) if reported else None
        return out | {"cached_prompt_tokens": cached,
                      "cached_share": cached_share(cached, out["prompt_tokens"]),
                      "cost_usd": round(sum(costs), 6) if costs else None}


def cached_share(cached: int | None, prompt_tokens: int) -> float | None:
    """Share of prompt tokens served from the server's prefix cache; None when not reported."""
    if cached is None or not prompt_tokens:
        return None
    return round(cached / prompt_tokens, 4)
