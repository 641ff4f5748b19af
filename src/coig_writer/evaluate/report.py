"""Write the evaluation report: results.json, PNG plots (CJK-capable fonts) and report.html."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import font_manager  # noqa: E402

CJK_FONTS = ["Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans SC", "WenQuanYi Zen Hei",
             "Source Han Sans SC", "SimHei"]


def use_cjk_font() -> str | None:
    """Select an installed CJK font for matplotlib; returns its name (None: none installed)."""
    installed = {f.name for f in font_manager.fontManager.ttflist}
    for name in CJK_FONTS:
        if name in installed:
            plt.rcParams["font.sans-serif"] = [name, "DejaVu Sans"]
            plt.rcParams["font.family"] = "sans-serif"
            plt.rcParams["axes.unicode_minus"] = False
            return name
    return None


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def heatmap(section: dict[str, Any], title: str, path: Path) -> None:
    models = section["models"]
    M, lo, hi = section["win_rate"], section["ci_low"], section["ci_high"]
    k = len(models)
    fig, ax = plt.subplots(figsize=(1.6 * k + 2, 1.3 * k + 1.5))
    data = [[(v if v is not None else float("nan")) for v in row] for row in M]
    im = ax.imshow(data, cmap="RdYlGn", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            if M[i][j] is not None:
                ax.text(j, i, f"{_pct(M[i][j])}\n[{_pct(lo[i][j])}, {_pct(hi[i][j])}]",
                        ha="center", va="center", fontsize=8)
    ax.set_xticks(range(k), models, rotation=30, ha="right")
    ax.set_yticks(range(k), models)
    ax.set_xlabel("opponent (column)")
    ax.set_ylabel("model (row)")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046, label="win rate (ties = ½)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def diversity_scatter(result: dict[str, Any], path: Path) -> None:
    sec = result["overall"]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for n, (m, w) in enumerate(zip(sec["models"], sec["mean_win_rate"], strict=True)):
        d = result["diversity"].get(m, {}).get("all", {})
        for metric, marker in (("ttr_word", "o"), ("mattr_word", "s")):
            x = d.get(metric, {}).get("mean")
            if x is not None and w is not None:
                ax.scatter(x, w, marker=marker, color=f"C{n}")
                ax.annotate(m, (x, w), textcoords="offset points", xytext=(4, 4), fontsize=8)
    for metric, marker in (("TTR (word)", "o"), ("MATTR (word)", "s")):
        ax.scatter([], [], marker=marker, color="gray", label=metric)
    ax.set_xlabel("lexical diversity (mean per answer)")
    ax.set_ylabel("mean win rate vs. the other models")
    ax.set_title("Diversity vs. preference (词汇多样性与胜率)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def lengths_plot(lengths: dict[str, list[int]], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    names = list(lengths)
    ax.boxplot([lengths[n] or [0] for n in names])
    ax.set_xticks(range(1, len(names) + 1), names, rotation=30, ha="right")
    ax.set_ylabel("answer length (characters)")
    ax.set_title("Answer lengths (回答长度)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(sec: dict[str, Any], key: str, i: int, j: int) -> str:
    v = sec[key][i][j]
    if v is None:
        return "–"
    if key == "gap":
        return f"{100 * v:+.1f}"
    p = sec["sign_test_p"][i][j]
    return (f"{_pct(v)} [{_pct(sec['ci_low'][i][j])}, {_pct(sec['ci_high'][i][j])}]"
            + (f" p={p:.3g}" if p is not None else ""))


def _matrix_table(sec: dict[str, Any], key: str = "win_rate") -> str:
    models = sec["models"]
    rows = [[m, *(_cell(sec, key, i, j) for j in range(len(models)))] for i, m in enumerate(models)]
    return _table(["row vs column", *models], rows)


def write_report(result: dict[str, Any], lengths: dict[str, list[int]], out: Path) -> dict[str, Path]:
    """Write results.json, PNGs and report.html under `out`; returns the written paths."""
    out.mkdir(parents=True, exist_ok=True)
    font = use_cjk_font()
    files: dict[str, Path] = {"json": out / "results.json"}
    files["json"].write_text(json.dumps(result, ensure_ascii=False, indent=2), "utf-8")
    files["heatmap"] = out / "win_rates.png"
    heatmap(result["overall"], f"Win rates ({result['source']}), all prompts", files["heatmap"])
    for lang, sec in result["by_language"].items():
        files[f"heatmap_{lang}"] = out / f"win_rates_{lang}.png"
        heatmap(sec, f"Win rates ({result['source']}), {lang} prompts", files[f"heatmap_{lang}"])
    files["diversity"] = out / "diversity_vs_win_rate.png"
    diversity_scatter(result, files["diversity"])
    files["lengths"] = out / "lengths.png"
    lengths_plot(lengths, files["lengths"])

    o = result["overall"]
    parts = [f"<h1>coig-writer evaluation ({html.escape(result['source'])})</h1>",
             f"<p>Judges: {html.escape(', '.join(result['judges']))}; prompts: {o['n_prompts']};"
             f" bootstrap rounds: {result['bootstrap_rounds']}; pair consistency:"
             f" {html.escape(json.dumps(result['pair_consistency']))}</p>"]
    if font is None:
        parts.append("<p><b>No CJK font installed: Chinese labels in plots may not render "
                     "(install fonts-noto-cjk).</b></p>")
    parts += ["<h2>Win rates (row vs column, %, 95% bootstrap CI, sign-test p)</h2>",
              _matrix_table(o), f'<img src="{files["heatmap"].name}" alt="win-rate heatmap">']
    for lang, sec in result["by_language"].items():
        parts += [f"<h3>{lang} prompts ({sec['n_prompts']})</h3>", _matrix_table(sec),
                  f'<img src="win_rates_{lang}.png" alt="win rates {lang}">']
    if "cross_lingual_gap" in result:
        gap = {"models": o["models"], "gap": result["cross_lingual_gap"]}
        parts += ["<h2>Cross-lingual gap (zh − en win rate, points)</h2>", _matrix_table(gap, "gap")]
    parts += ["<h2>Bradley–Terry ratings (log strength, 95% CI) and length control</h2>",
              _table(["model", "BT", "CI", "mean win rate", "LC win rate vs others (mean)"],
                     [[m, f"{o['bradley_terry'][i]:+.2f}",
                       f"[{o['bt_ci_low'][i]:+.2f}, {o['bt_ci_high'][i]:+.2f}]",
                       _pct(o["mean_win_rate"][i]),
                       _pct(_row_mean(o.get("length_controlled"), i))]
                      for i, m in enumerate(o["models"])])]
    div_rows = []
    for m, langs in result["diversity"].items():
        for lang, d in langs.items():
            div_rows.append([m, lang, d["chars"]["n"], f"{d['chars']['mean']:.0f}",
                             *(f"{d[k]['mean']:.3f} / {d[k]['median']:.3f}"
                               for k in ("ttr_word", "mattr_word", "mtld_word", "ttr_char"))])
    parts += ["<h2>Lexical diversity (mean / median per answer)</h2>",
              _table(["model", "prompts", "n", "chars", "TTR word", "MATTR word", "MTLD word",
                      "TTR char"], div_rows),
              f'<img src="{files["diversity"].name}" alt="diversity vs win rate">',
              f'<img src="{files["lengths"].name}" alt="answer lengths">',
              "<h2>Diversity vs. win rate (Pearson / Spearman, 95% CI)</h2>",
              _table(["set:metric", "n", "Pearson r [CI]", "Spearman ρ [CI]"],
                     [[k, c["n"], f"{c['pearson']:.2f} {c['pearson_ci']}",
                       f"{c['spearman']:.2f} {c['spearman_ci']}"]
                      for k, c in result["diversity_vs_win_rate"].items()]),
              "<h2>Language contamination (answers not in the prompt's language)</h2>",
              _table(["model", "prompts", "n", "wrong language", "rate"],
                     [[m, lang, c["n"], c["wrong_language"], _pct(c["rate"])]
                      for m, d in result["contamination"].items() for lang, c in d.items()]),
              "<h2>Per genre (win-rate matrices)</h2>",
              _table(["genre", "prompts", "matrix (row vs column, %)"],
                     [[g, d["n_prompts"], json.dumps([[_pct(v) for v in r] for r in d["win_rate"]])]
                      for g, d in result["by_genre"].items()])]
    if result.get("judge_vs_human"):
        a = result["judge_vs_human"]
        parts += ["<h2>Judge vs. human agreement</h2>",
                  _table(["decisions", "agreement", "Cohen's κ"],
                         [[a["n"], _pct(a["percent_agreement"]), f"{a['cohen_kappa']:.3f}"]])]
    ref = result["reference_paper"]
    parts += ["<h2>Reference: the paper's published numbers</h2>",
              f"<p>{html.escape(ref['source'])}. {html.escape(ref['note'])}</p>",
              _table(["model", "zh win rate vs G", "en win rate vs G"],
                     [[m, _pct(ref["win_rate_vs_G"]["zh"].get(m)),
                       _pct(ref["win_rate_vs_G"]["en"].get(m))] for m in ref["models"][:-1]]),
              _table(["model", "TTR (zh, mean)"], [[m, v] for m, v in ref["ttr_mean_zh"].items()])]
    style = ("body{font-family:'Noto Sans CJK SC',sans-serif;max-width:1100px;margin:auto}"
             "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;"
             "padding:3px 6px;font-size:13px}img{max-width:100%;display:block;margin:8px 0}")
    files["html"] = out / "report.html"
    files["html"].write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>coig-writer"
                             f" evaluation</title><style>{style}</style></head><body>"
                             + "\n".join(parts) + "</body></html>", "utf-8")
    return files


def _row_mean(M: list[list[float | None]] | None, i: int) -> float | None:
    if not M:
        return None
    vals = [v for j, v in enumerate(M[i]) if j != i and v is not None]
    return sum(vals) / len(vals) if vals else None
