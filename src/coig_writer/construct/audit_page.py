"""The `construct audit-gates` report as a plot (PNG: per variant kind the AUC with its CI, integer
against expected scores, and the share caught) and as one self-contained HTML page (every text
escaped; the plot embedded)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RULES = (("argmax", "integer scores", "C0", "o"), ("expected", "expected scores", "C1", "s"))


def plot_png(report: dict[str, Any]) -> bytes:
    """The plot as PNG bytes."""
    from ..evaluate.report import use_cjk_font

    use_cjk_font()
    var = report["variants"]
    names = [v["kind"] for v in var]
    x = list(range(len(names)))
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(max(6.0, 1.1 * len(names) + 2), 7), sharex=True,
                                 gridspec_kw={"height_ratios": [3, 2]})
    for n, (rule, label, color, marker) in enumerate(RULES):
        pts = [(i + (n - 0.5) * 0.2, v["auc"][rule]) for i, v in zip(x, var, strict=True)
               if v["auc"].get(rule)]
        if not pts:
            continue
        xs = [p[0] for p in pts]
        ys = [p[1]["auc"] for p in pts]
        lo = [max(0.0, y - (p[1]["ci"] or [y, y])[0]) for y, p in zip(ys, pts, strict=True)]
        hi = [max(0.0, (p[1]["ci"] or [y, y])[1] - y) for y, p in zip(ys, pts, strict=True)]
        ax.errorbar(xs, ys, yerr=[lo, hi], fmt=marker, color=color, capsize=3, label=label)
    ax.axhline(0.5, color="gray", ls="--", lw=1, label="chance (0.5)")
    ax.axhline(0.8, color="C2", ls=":", lw=1, label="goal (0.8)")
    ax.set_ylim(-0.02, 1.05)
    ax.set_ylabel("AUC, original vs variant\n(six-score sum, 95% CI)")
    ax.set_title(f"Gate audit: {report.get('model', '')} (门控审计)")
    ax.legend(fontsize=8, loc="lower right")
    shares = [v["caught_share"] or 0.0 for v in var]
    bx.bar(x, shares, color=["C3" if v["seen_by"] == "checks" else "C4" for v in var])
    fr = report["originals"].get("false_reject_rate")
    if fr is not None:
        bx.axhline(fr, color="black", ls="--", lw=1, label=f"originals not accepted ({fr:.0%})")
        bx.legend(fontsize=8, loc="lower right")
    bx.set_ylim(0, 1.05)
    bx.set_ylabel("share caught\n(red: a check should, purple: only the LLM can)")
    bx.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def auc_text(block: dict[str, Any] | None) -> str:
    if not block:
        return "–"
    ci = block["ci"]
    return f"{block['auc']:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def counts_text(mapping: dict[str, int] | None, top: int | None = None) -> str:
    return ", ".join(f"{k} {v}" for k, v in list((mapping or {}).items())[:top]) or "–"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def variant_rows(report: dict[str, Any], top: int | None = None) -> list[list[Any]]:
    """The per-kind table (the CLI prints the same columns, the `top` causes only)."""
    return [[v["kind"], v["seen_by"], v["judged"], f"{v['caught']}/{v['judged']}",
             counts_text(v["caught_by"], top), auc_text(v["auc"].get("argmax")),
             auc_text(v["auc"].get("expected"))] for v in report["variants"]]


VARIANT_HEADER = ["variant", "seen by", "n", "caught", "by", "AUC argmax [CI]",
                  "AUC expected [CI]"]
STYLE = ("body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em}"
         "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .5em;"
         "vertical-align:top;text-align:left}td{white-space:pre-wrap}img{max-width:100%}")


def page_html(report: dict[str, Any], png: bytes | None = None) -> str:
    """The page: inputs, the originals, the per-kind table, verdict lines, the plot, what each
    variant changed (one example each) and every judged row."""
    esc = html.escape
    o, t = report["originals"], report["thresholds"]
    inp = report.get("input", {})
    where = inp.get("file") or f"store {inp.get('db', '')}, status {inp.get('status', '')}"
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Gate audit"
             f"</title><style>{STYLE}</style></head><body><h1>Gate audit</h1>",
             f"<p>{esc(str(o['n']))} triplets from {esc(str(where))}; model "
             f"{esc(str(report.get('model', '')))}; score rule {esc(report['score_rule'])}; "
             f"thresholds min_each {esc(str(t['min_each']))}, min_sum {esc(str(t['min_sum']))}; "
             f"CI: {esc(report['ci']['method'])}, {esc(str(report['ci']['rounds']))} rounds; seed "
             f"{esc(str(report['seed']))}.</p>",
             "<h2>Originals</h2>",
             _table(["judged", "not accepted", "false-reject rate", "by"],
                    [[o["judged"], o["not_accepted"],
                      "–" if o["false_reject_rate"] is None else f"{o['false_reject_rate']:.0%}",
                      counts_text(o["not_accepted_by"])]]),
             "<h2>Variants</h2>", _table(VARIANT_HEADER, variant_rows(report)),
             "<ul>" + "".join(f"<li>{esc(v['verdict'])}</li>" for v in report["variants"])
             + "</ul>"]
    if png:
        parts.append("<img alt='AUC per variant kind' src='data:image/png;base64,"
                     + base64.b64encode(png).decode() + "'>")
    ex = [[v["kind"], v["describes"], (v.get("example") or {}).get("field", ""),
           (v.get("example") or {}).get("original", ""), (v.get("example") or {}).get("variant", "")]
          for v in report["variants"]]
    parts += ["<h2>What each variant changes</h2>",
              _table(["variant", "what", "field", "original (start)", "variant (start)"], ex)]
    skipped = [[v["kind"], s["of"], s["why"]] for v in report["variants"] for s in v["skipped"]]
    if skipped:
        parts += ["<h2>Variants not made</h2>", _table(["variant", "of", "why"], skipped)]
    rows = [[r["id"], r["variant"] or "original", r["status"], ", ".join(r["caught_by"]) or "–",
             r["score_sum"], r["expected_sum"] if r["expected_sum"] is not None else "–",
             "; ".join(r["reasons"])[:400]] for r in report["rows"]]
    parts += ["<h2>Every judged row</h2>",
              _table(["id", "variant", "status", "caught by", "score sum", "expected sum",
                      "reasons"], rows), "</body></html>"]
    return "\n".join(parts)


def write_page(report: dict[str, Any], path: Path, png: bytes | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page_html(report, png if png is not None else plot_png(report)), "utf-8")
