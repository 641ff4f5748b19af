"""What a run or a store looks like to a person (rich tables and sentences) and to a script
(`--json`: one JSON document on stdout, nothing else there)."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich import box
from rich.table import Table

from .common import console, warn


def print_json(data: Any) -> None:
    """Plain JSON on stdout: no colours, no wrapping, whatever the terminal."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
    sys.stdout.flush()


def counts(mapping: dict[str, int] | None, empty: str = "none") -> str:
    """`{'ok': 10, 'filtered': 2}` as "10 ok, 2 filtered" (largest first)."""
    items = sorted((mapping or {}).items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{v:,} {k}" for k, v in items) or empty


def share(value: float | None) -> str:
    return "not reported" if value is None else f"{value:.0%}"


def cached_cell(cached: int | None, share_: float | None) -> str:
    if cached is None:
        return "n/r"
    return f"{cached:,} ({share_:.0%})" if share_ is not None else f"{cached:,}"


def accounting_table(rows: list[dict]) -> Table:
    """Calls, cache hits, prompt tokens (and how many of them the server served from its prefix
    cache), completion tokens, truncated/unusable answers, latency and cost per stage (the model
    is named in the title when there is one, else in a column)."""
    models = sorted({r["model"] for r in rows})
    one = len(models) == 1
    t = Table(box=box.SIMPLE, title=f"LLM usage ({models[0]})" if one else "LLM usage",
              pad_edge=False)
    priced = any(r.get("cost_usd") is not None for r in rows)
    cols = ["stage"] + ([] if one else ["model"]) + ["calls", "hits", "in tok", "cached in",
                                                      "out tok", "cut", "bad", "p50 s", "p95 s"]
    cols += ["$"] if priced else []
    for c in cols:
        t.add_column(c, justify="left" if c in ("stage", "model") else "right",
                     no_wrap=c == "stage")
    unreported = False
    for r in rows:
        cost = r.get("cost_usd")
        cached = r.get("cached_prompt_tokens")
        unreported |= cached is None and bool(r["calls"])
        cells = [r["stage"]] + ([] if one else [r["model"]]) + [
            str(r["calls"]), str(r["cache_hits"]), f"{r['prompt_tokens']:,}",
            cached_cell(cached, r.get("cached_share")),
            f"{r['completion_tokens']:,}", str(r["truncated"]), str(r.get("unusable", 0)),
            f"{r['latency_p50_s']:.1f}" if r["latency_p50_s"] is not None else "-",
            f"{r['latency_p95_s']:.1f}" if r["latency_p95_s"] is not None else "-"]
        cells += [f"{cost:.4f}" if cost is not None else "-"] if priced else []
        t.add_row(*cells, end_section=r is rows[-1])
    if len(rows) > 1:
        tot = {k: sum(r[k] for r in rows) for k in ("calls", "cache_hits", "prompt_tokens",
                                                    "completion_tokens", "truncated")}
        known = [r["cached_prompt_tokens"] for r in rows if r.get("cached_prompt_tokens") is not None]
        cached_tot = sum(known) if known else None
        share_ = cached_tot / tot["prompt_tokens"] if known and tot["prompt_tokens"] else None
        costs = [r["cost_usd"] for r in rows if r.get("cost_usd") is not None]
        cells = ["total"] + ([] if one else [""]) + [
            str(tot["calls"]), str(tot["cache_hits"]), f"{tot['prompt_tokens']:,}",
            cached_cell(cached_tot, share_), f"{tot['completion_tokens']:,}",
            str(tot["truncated"]), str(sum(r.get("unusable", 0) for r in rows)), "", ""]
        cells += [f"{sum(costs):.4f}" if costs else "-"] if priced else []
        t.add_row(*cells, style="bold")
    if unreported:
        t.caption = "cached in: prompt tokens served from the server's prefix cache; " \
                    "n/r: not reported by the server"
    return t


def construct_sentence(s: dict[str, Any]) -> str:
    """One construct run summary (RunSummary.as_dict()) as a sentence."""
    tot = s.get("totals") or {}
    text = (f"{s.get('pending', 0):,} texts in {s.get('elapsed_s', 0):.1f}s on the "
            f"{s.get('executor', 'local')} executor: {counts(s.get('statuses'), 'no triplets')}; "
            f"{s.get('llm_calls', 0):,} LLM calls, {s.get('cache_hits', 0):,} cache hits (answers "
            "replayed from the store)")
    if tot.get("prompt_tokens"):
        text += (f"; {tot['prompt_tokens']:,} prompt tokens, of which the server's prefix cache "
                 f"served {share(tot.get('cached_share'))}")
    if s.get("errors"):
        text += f"; {len(s['errors'])} items failed"
    return text + "."


def print_summary(summary, as_json: bool = False, health: bool = True) -> None:
    """A finished construct run: a sentence, the usage table, the failures."""
    d = summary.as_dict()
    if as_json:
        print_json(d)
        for w in (summary.gate_health or {}).get("warnings", []):
            warn("gate warning:", w, "bold red")
    else:
        console.print(f"run {summary.run_id}: {construct_sentence(d)}", highlight=False)
        if summary.accounting:
            console.print(accounting_table(summary.accounting))
        if summary.gate_health and health:
            print_gate_health(summary.gate_health)
    for sid, e in summary.errors.items():
        warn("failed", f"{sid}: {e} (rerun to retry)", "red")


def print_gate_health(health: dict[str, Any]) -> None:
    """The spread of each score dimension, one line each, then the warnings in red (to stderr,
    so they show with --json too)."""
    from ..construct.health import health_lines

    for line in health_lines(health):
        console.print(line, markup=False, highlight=False)
    for w in health["warnings"]:
        warn("gate warning:", w, "bold red")


def counts_table(title: str, mapping: dict[str, int]) -> Table:
    t = Table(title=title, box=box.SIMPLE, pad_edge=False, title_justify="left")
    t.add_column("status")
    t.add_column("count", justify="right")
    for k, v in sorted(mapping.items(), key=lambda kv: (-kv[1], kv[0])):
        t.add_row(k, f"{v:,}")
    t.add_row("total", f"{sum(mapping.values()):,}", style="bold")
    return t


def runs_table(runs: list[dict[str, Any]]) -> Table:
    t = Table(title="recent construct runs", box=box.SIMPLE, pad_edge=False, title_justify="left",
              caption="interrupted: no summary (killed, or still running); hits: answers "
                      "replayed from the store; cached: share of prompt tokens the server "
                      "served from its prefix cache (n/r: not reported)")
    for c in ("run", "state", "texts", "outcome", "calls", "hits", "in tok", "cached", "time s"):
        t.add_column(c, justify="left" if c in ("run", "state", "outcome") else "right",
                     no_wrap=c in ("run", "state"), min_width=14 if c == "outcome" else None)
    for r in runs:
        s = r["summary"] or {}
        tot = s.get("totals") or {}
        share_ = tot.get("cached_share")
        t.add_row(r["id"], "finished" if r["finished_at"] else "interrupted",
                  f"{s.get('pending', 0):,}" if s else "-",
                  counts(s.get("statuses"), "-") if s else "-",
                  f"{s.get('llm_calls', 0):,}" if s else "-",
                  f"{s.get('cache_hits', 0):,}" if s else "-",
                  f"{tot['prompt_tokens']:,}" if tot.get("prompt_tokens") is not None else "-",
                  "-" if not tot.get("prompt_tokens") else "n/r" if share_ is None else f"{share_:.0%}",
                  f"{s['elapsed_s']:.1f}" if s.get("elapsed_s") is not None else "-")
    return t


def acceptance_sentence(acc: dict[str, int]) -> str:
    review = ", ".join(f"{v:,} {k.removeprefix('review_')}" for k, v in sorted(acc.items())
                       if k.startswith("review_"))
    return (f"pipeline accepted {acc.get('pipeline_accepted', 0):,}, human reviewers accepted "
            f"{acc.get('human_accepted', 0):,}, both {acc.get('both_accepted', 0):,}; "
            f"review status: {review or 'none'}")


def print_status(db, status: dict[str, Any]) -> None:
    """`construct status` for a person: a sentence, tables of texts and triplets by status,
    review acceptance, the recent runs, and the last run's usage per stage."""
    texts, triplets, recent = status["texts"], status["triplets"], status["runs"]
    console.print(f"{db}: {counts(texts, 'no texts')} texts; {counts(triplets, 'no')} "
                  f"triplets; {status['quarantined']:,} quarantined rows", highlight=False)
    if texts:
        console.print(counts_table("texts", texts))
    if triplets:
        console.print(counts_table("triplets", triplets))
    if status["acceptance"]:
        console.print(acceptance_sentence(status["acceptance"]), highlight=False)
    if recent:
        console.print(runs_table(recent))
        last = recent[-1]
        if last["summary"]:
            console.print(f"last run {last['id']}: {construct_sentence(last['summary'])}",
                          highlight=False)
        if (last["summary"] or {}).get("accounting"):
            console.print(accounting_table(last["summary"]["accounting"]))
        if (last["summary"] or {}).get("gate_health"):
            print_gate_health(last["summary"]["gate_health"])
