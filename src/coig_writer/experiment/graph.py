"""The plan as a graph of steps: prompts; each mixture -> its training -> its answers; each
model judged against the reference; optional K-way ranking; the report. A step's inputs are
its plan section and its upstream steps' output hashes; their hash decides whether it reruns."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from .plan import Plan


@dataclass
class Step:
    name: str
    kind: str  # prompts, mixture, train, generate, judge, rank, report
    target: str | None = None  # the mixture/model a step is about
    deps: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)


def build_graph(plan: Plan) -> list[Step]:
    """Every step in an order where each comes after the steps it depends on."""
    names = [m.name for m in plan.mixtures]
    ref = plan.judge.reference
    gen = plan.generation.model_dump()
    # where the judge runs and how fast do not change its verdicts
    judge = plan.judge.model_dump(exclude={"concurrency", "prices", "api_key_env", "base_url",
                                           "endpoints", "modes", "max_failed"})
    steps = [Step("prompts", "prompts", config={"eval_sets": [s.model_dump() for s in
                                                              plan.eval_sets]})]
    for m in plan.mixtures:
        steps.append(Step(f"mixture:{m.name}", "mixture", m.name, config={
            "mixture": m.model_dump(), "reasoning": plan.reasoning,
            "creative": plan.creative.model_dump(), "general_files": plan.general_files}))
    for m in plan.mixtures:
        steps.append(Step(f"train:{m.name}", "train", m.name, [f"mixture:{m.name}"], config={
            "base_model": plan.base_model, "settings": plan.training.for_model(m.name),
            "launcher": plan.training.launcher}))
    for m in plan.mixtures:  # concurrency changes speed, not answers
        steps.append(Step(f"generate:{m.name}", "generate", m.name,
                          ["prompts", f"train:{m.name}"],
                          config={k: v for k, v in gen.items() if k != "concurrency"}))
    if "pairwise" in plan.judge.modes:
        for n in names:
            if n != ref:
                steps.append(Step(f"judge:{n}", "judge", n, [f"generate:{n}", f"generate:{ref}"],
                                  config=judge))
    if "ranking" in plan.judge.modes and len(names) > 2:
        steps.append(Step("rank", "rank", None, [f"generate:{n}" for n in names], config=judge))
    steps.append(Step("report", "report", None,
                      [s.name for s in steps if s.kind in ("judge", "rank")],
                      config={**plan.report.model_dump(), "reference": ref, "order": names}))
    return steps


def step_inputs(step: Step, upstream: dict[str, dict[str, Any]],
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a step depends on: its config, its upstream outputs' hashes, and `extra` (digests
    of files it reads, e.g. the general data)."""
    return {"config": step.config,
            "upstream": {d: (upstream.get(d) or {}).get("hash") for d in step.deps},
            **({"files": extra} if extra else {})}


def input_hash(inputs: dict[str, Any]) -> str:
    blob = json.dumps(inputs, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: d}


def explain_change(old: dict[str, Any], new: dict[str, Any], limit: int = 4) -> str:
    """Why the inputs differ, in words: `config.settings.learning_rate 0.0005 -> 0.001`,
    `upstream train:CW changed`, `files general changed`."""
    a, b = _flatten(old), _flatten(new)
    parts = []
    for k in sorted(set(a) | set(b)):
        if a.get(k) == b.get(k):
            continue
        if k.startswith("upstream."):
            parts.append(f"{k.removeprefix('upstream.')} changed")
        elif k.startswith("files."):
            parts.append(f"{k.removeprefix('files.')} content changed")
        else:
            parts.append(f"{k.removeprefix('config.')} {a.get(k)!r} -> {b.get(k)!r}")
    if not parts:
        return "inputs changed"
    more = f" (+{len(parts) - limit} more)" if len(parts) > limit else ""
    return "; ".join(parts[:limit]) + more
