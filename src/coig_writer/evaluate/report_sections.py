"""Report sections about the judges and the leaderboards: the warnings banner, the header, the
judges of an ensemble and their agreement, Arena-Hard scores with both interval conventions,
WritingBench's aggregation, and the published numbers with the interval and judge behind each."""

from __future__ import annotations

import html
from typing import Any

from .report_html import ci_text, num, pct, table
from .stats import format_p

BANNER = ("border:3px solid #b00;background:#fee;padding:8px 14px;margin:10px 0;"
          "font-size:15px")


def warnings_html(result: dict[str, Any]) -> list[str]:
    """A red box at the very top listing every warning (nothing when there is none)."""
    ws = result.get("warnings") or []
    if not ws:
        return []
    items = "".join(f"<li>{html.escape(w['message'])}</li>" for w in ws)
    return [f'<div class="warnings" style="{BANNER}"><b>{len(ws)} warning'
            f'{"s" if len(ws) > 1 else ""}: read before quoting any number</b>'
            f"<ul>{items}</ul></div>"]


def header_html(result: dict[str, Any]) -> list[str]:
    c = result.get("pair_consistency") or {}
    pairs = sum(c.values())
    per = " (counted per judge)" if len(result["judges"]) > 1 else ""
    sentence = (f"Pairwise verdicts: {pairs} prompt and model pairs{per}, "
                f"{c.get('consistent', 0)} "
                f"judged the same in both orders, {c.get('inconsistent', 0)} changed with the "
                f"order (counted as ties), {c.get('single_order', 0)} judged in one order only."
                if pairs else "No pairwise verdicts.")
    judges = ", ".join(result["judges"]) or "none"
    return [f"<h1>coig-writer evaluation ({html.escape(result['source'])})</h1>",
            f"<p>Judge{'s' if len(result['judges']) > 1 else ''}: {html.escape(judges)}; "
            f"bootstrap rounds: {result['bootstrap_rounds']} (all CIs, Bradley–Terry included). "
            f"{html.escape(sentence)}</p>"]


def not_informative_html(result: dict[str, Any]) -> list[str]:
    info = result.get("informative") or {}
    if info.get("pairwise", True):
        return []
    return [f'<p style="{BANNER}"><b>Pairwise comparison {html.escape(info["reason"])}</b></p>']


def _arena_rows(a: dict[str, Any], informative: bool) -> list[list[Any]]:
    rows = []
    for r in a["rows"]:
        if r["score"] is None or (not informative and r["model"] != a["baseline"]):
            shown = "not informative" if r["score"] is not None else "no score"
            rows.append([r["model"], shown, "–", "–", r["prompts"] or 0, r["battles"] or 0,
                         r["lone_orders"], r["note"] or ("judge gave nearly every verdict to "
                                                          "one slot")])
            continue
        rows.append([r["model"], f"{r['score']:.1f}", ci_text(r["ci95_prompts"], "{:.1f}"),
                     ci_text(r["ci90_battles"], "{:.1f}"), r["prompts"] if r["prompts"] is not None
                     else "–", r["battles"] if r["battles"] is not None else "–",
                     r["lone_orders"], r["note"] or ""])
    return rows


def arena_html(a: dict[str, Any], img: str, informative: bool,
               bound: list[str] | None = None) -> list[str]:
    """The Arena-Hard table (pooled judges), then one per judge of an ensemble; `bound`: judges
    whose verdicts follow the slot, whose tables say "not informative"."""
    head = ["model", "score", a["interval_ours"], a["interval_arena_hard"], "prompts scored",
            "battles", "lone orders (not scored)", "note"]
    parts = [f"<h2>Arena-Hard score vs {html.escape(a['baseline'])} (= 50)</h2>",
             f"<p>{html.escape(a['rule'])}. Judges: {html.escape(', '.join(a['judges']))}; "
             f"{a['rounds']} bootstrap rounds for both intervals (Arena-Hard itself uses 100). "
             "Compare with the leaderboard's figures using the 90% battle interval.</p>",
             table(head, _arena_rows(a, informative)),
             "<p>Verdicts against the baseline: "
             + html.escape(", ".join(f"{k} {v}" for k, v in a["verdicts"].items())) + "</p>"]
    lone = [f"{r['model']}: {', '.join(r['lone_order_prompts'])}" for r in a["rows"]
            if r["lone_order_prompts"]]
    if lone:
        parts.append("<p>Lone orders (one order judged, counted but not scored): "
                     + html.escape("; ".join(lone)) + "</p>")
    for judge, sub in (a.get("by_judge") or {}).items():
        parts += [f"<h3>Judge {html.escape(judge)} alone</h3>",
                  table(head, _arena_rows(sub, judge not in (bound or [])))]
    return parts + [f'<img src="{img}" alt="arena scores">']


def writingbench_html(rub: dict[str, Any]) -> list[str]:
    wb = rub.get("writingbench")
    if not wb:
        return []
    models = [m for m in rub["models"] if m in wb["overall"]]
    parts = ["<h3>WritingBench's aggregation (as its calculate_scores.py): overall = every "
             "criterion score pooled (sum / count), 95% CI resampling prompts</h3>",
             table(["model", "overall (1-10)", "overall (0-100)", "95% CI (0-100)",
                    "criterion scores", "prompts", "prompts with fewer criteria than asked",
                    "criterion scores missing"],
                   [[m, f"{wb['overall'][m]['overall']:.3f}",
                     f"{wb['overall'][m]['overall_100']:.1f}",
                     ci_text(wb["overall"][m]["ci_100"], "{:.1f}"),
                     wb["overall"][m]["criterion_scores"], wb["overall"][m]["prompts"],
                     wb["missing"][m]["prompts_short"] or "none",
                     wb["missing"][m]["criteria_missing"] or "none"]
                    for m in models])]
    if wb["requirements"]:
        rows = []
        for req, d in wb["requirements"].items():
            for m, v in d["models"].items():
                rows.append([req, m, f"{v['prompts']} of {d['prompts_in_subset']}",
                             f"{10 * v['R']:.1f}", "–" if v["C"] is None else f"{10 * v['C']:.1f}"])
        parts += ["<h3>WritingBench requirement subsets (0-100): R = mean prompt score over the "
                  "subset's prompts, C = mean score of the criteria judging that requirement</h3>",
                  table(["requirement", "model", "prompts scored", "R", "C"], rows)]
    if rub.get("by_judge"):
        parts += ["<h3>WritingBench overall per judge (0-100)</h3>",
                  table(["judge", *models], [[j, *(f"{d[m]['overall_100']:.1f} "
                                                    f"{ci_text(d[m]['ci_100'], '{:.1f}')}"
                                                    if m in d else "–" for m in models)]
                                             for j, d in rub["by_judge"].items()])]
    return parts


def judges_html(result: dict[str, Any]) -> list[str]:
    """Each judge's own figures, and the judges' agreement, when there are several."""
    det = result.get("judges_detail") or {}
    if len(det) < 2:
        return []
    bound = set((result.get("informative") or {}).get("judges_not_informative") or [])
    rows = []
    for name, d in det.items():
        pos, c = d.get("position") or {}, d.get("pair_consistency") or {}
        wr = d.get("win_rate")
        means = ", ".join(f"{m} {pct(v)}" for m, v in zip(wr["models"], wr["mean_win_rate"],
                                                           strict=True)) if wr else "–"
        rows.append([name, d["verdicts"], d["rubric_scores"],
                     pct(pos.get("first_position_rate")), format_p(pos.get("first_position_p")),
                     pct(pos.get("inconsistent_rate")), c.get("single_order", 0),
                     "not informative" if name in bound else means])
    parts = ["<h2>Judges (ensemble): each judge alone</h2>",
             table(["judge", "verdicts", "rubric scores", "first slot wins %", "binomial p",
                    "flips with order %", "one order only", "mean win rate vs the others %"],
                   rows)]
    agree = result.get("judge_agreement") or []
    if agree:
        parts += ["<h3>Agreement between judges (same prompt and model pair: A better, B "
                  "better or tie; Cohen's κ with a 95% bootstrap CI)</h3>",
                  table(["judge", "judge", "decisions", "agreement", "Cohen's κ", "95% CI"],
                        [[a["judge_a"], a["judge_b"], a["n"], pct(a["percent_agreement"]),
                          num(a["cohen_kappa"], "{:.3f}"), ci_text(a["kappa_ci"], "{:.3f}")]
                         for a in agree])]
    return parts


def published_html(result: dict[str, Any]) -> list[str]:
    """Every published figure with its scale, interval convention and judge, beside ours."""
    ref = result["reference_paper"]
    parts = ["<h2>Published numbers and how they were made</h2>",
             "<h3>The COIG-Writer paper (judge: human blind ranking; interval: none "
             "published)</h3>", f"<p>{html.escape(ref['source'])}. {html.escape(ref['note'])}</p>",
             table(["model", "zh win rate vs G", "en win rate vs G", "interval", "judge"],
                   [[m, pct(ref["win_rate_vs_G"]["zh"].get(m)), pct(ref["win_rate_vs_G"]["en"]
                                                                    .get(m)),
                     "none published", "human ranking"] for m in ref["models"][:-1]]),
             table(["model", "TTR (zh, mean)"], [[m, v] for m, v in ref["ttr_mean_zh"].items()])]
    ours = {"writingbench": "ours: WritingBench overall, 95% CI resampling prompts",
            "arena-hard-creative": "ours: 95% CI resampling prompts and Arena-Hard's 90% CI "
                                   "resampling battles, both in the Arena-Hard table"}
    for key, r in result.get("reference_benchmarks", {}).items():
        parts += [f"<h3>Published {html.escape(key)} numbers</h3>",
                  f"<p>{html.escape(r['source'])}. Scale: {html.escape(r['scale'])}; "
                  f"aggregation: {html.escape(r.get('aggregation', '–'))}. Our figures beside "
                  f"them: {html.escape(ours.get(key, '–'))}; judges: "
                  f"{html.escape(', '.join(result['judges']))}.</p>",
                  table(["model", "score", "interval convention", "judge"],
                        [[k, v, r.get("interval", "–"), r["judge"]]
                         for k, v in r["scores"].items()])]
    return parts
