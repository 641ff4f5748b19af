"""`experiment status`: each step's record beside what its inputs are now."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .graph import build_graph, input_hash, step_inputs
from .plan import load_plan
from .steps import Context, StepError


def summarize(kind: str, out: dict[str, Any], folder: Path) -> str:
    """One line about a step's outputs."""
    if not out:
        return ""

    def rel(p: str) -> str:
        try:
            return str(Path(p).relative_to(folder))
        except ValueError:
            return p

    if kind == "prompts":
        return f"{out['n']} prompts"
    if kind == "mixture":
        c = out["counts"]
        return f"{c['total']} samples ({c['creative']} creative, {c['general']} general)"
    if kind == "train":
        return rel(out["model_dir"])
    if kind == "generate":
        return (f"{out['n']} answers as {out['model']} ({out['truncated']} truncated; "
                f"{out['new_calls']} new calls, {out['cache_hits']} cached)")
    if kind in ("judge", "rank"):
        failed = f", {out['failed']} failed" if out.get("failed") else ""
        return (f"{out['verdicts']} verdicts{failed} by {out['judge']} ({out['new_calls']} new "
                f"calls, {out['cache_hits']} cached)")
    return rel(out.get("html", ""))


def plan_status(path: str | Path) -> list[dict[str, Any]]:
    """One row per step: state (done, running, failed, blocked, pending, or stale when its
    inputs changed since it finished), input hash, outputs, seconds, cost, error."""
    from ..store import Store
    from .runner import file_inputs

    plan, folder = load_plan(path)
    db = folder / "store.sqlite"
    records: dict[str, dict[str, Any]] = {}
    if db.exists():
        with Store(db) as store:
            records = {r["step"]: r for r in store.experiment.steps()}
    ctx = Context(plan, folder, store=None)
    outputs = {k: r["outputs"] for k, r in records.items() if r["state"] == "done"}
    rows, states = [], {}
    for step in build_graph(plan):
        rec = records.get(step.name)
        note = ""
        try:
            now = input_hash(step_inputs(step, outputs, file_inputs(ctx, step)))
        except (StepError, OSError) as e:
            now, note = None, f"input unreadable: {e}"
        state = rec["state"] if rec else "pending"
        upstream_stale = any(states.get(d) in ("stale", "pending", "failed", "blocked")
                             for d in step.deps)
        if state == "done" and (rec["input_hash"] != now or upstream_stale):
            state, note = "stale", note or "inputs changed since it finished: reruns next time"
        states[step.name] = state
        rows.append({"step": step.name, "kind": step.kind, "state": state,
                     "input_hash": rec["input_hash"] if rec else now,
                     "outputs": rec["outputs"] if rec else {},
                     "summary": summarize(step.kind, rec["outputs"], folder) if rec else "",
                     "started_at": rec["started_at"] if rec else None,
                     "finished_at": rec["finished_at"] if rec else None,
                     "seconds": rec["seconds"] if rec else None,
                     "cost_usd": rec["cost_usd"] if rec else None,
                     "error": rec["error"] if rec else None, "note": note})
    return rows
