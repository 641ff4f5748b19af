"""Write the evaluation report: results.json, PNG plots (CJK-capable fonts) and report.html."""

from __future__ import annotations

import html
import importlib.util
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import font_manager  # noqa: E402

from .plots import (  # noqa: E402
    arena_plot,
    diversity_scatter,
    heatmap,
    length_bias_plot,
    lengths_plot,
    rubric_plot,
    vs_g_plot,
)
from .report_html import (  # noqa: E402
    agreement_table,
    ci_text,
    group_table,
    matrix_table,
    num,
    paper_vs_g,
    pct,
    row_mean,
    table,
)
from .report_sections import (  # noqa: E402
    arena_html,
    header_html,
    judges_html,
    not_informative_html,
    published_html,
    warnings_html,
    writingbench_html,
)
from .stats import format_p  # noqa: E402

CJK_FONTS = ["Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans SC", "WenQuanYi Zen Hei",
             "Source Han Sans SC", "SimHei"]


def bundled_cjk_font() -> Path | None:
    """NotoSansCJK-Regular.ttc from the `noto-cjk-sans-otc` wheel (found, never imported)."""
    spec = importlib.util.find_spec("noto_cjk_sans_otc")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "NotoSansCJK-Regular.ttc"
    return path if path.exists() else None


def use_cjk_font() -> str | None:
    """Select a CJK font for matplotlib (the bundled Noto Sans CJK first, registered with the
    font manager; else an installed one); returns its name (None: none available)."""
    bundled = bundled_cjk_font()
    if bundled is not None and "Noto Sans CJK SC" not in {f.name for f in
                                                          font_manager.fontManager.ttflist}:
        font_manager.fontManager.addfont(str(bundled))
    installed = {f.name for f in font_manager.fontManager.ttflist}
    for name in CJK_FONTS:
        if name in installed:
            plt.rcParams["font.sans-serif"] = [name, "DejaVu Sans"]
            plt.rcParams["font.family"] = "sans-serif"
            plt.rcParams["axes.unicode_minus"] = False
            return name
    return None


def _rubric_html(rub: dict[str, Any], refs: dict[str, Any], img: str) -> list[str]:
    models = rub["models"]
    ref = refs.get("writingbench")
    judges = ", ".join(rub["judges"])
    wb = (rub.get("writingbench") or {}).get("overall", {})
    rows = [[m, rub["overall"][m]["n"], f"{rub['overall'][m]['mean']:.3f}",
             ci_text(rub["overall"][m]["ci"], "{:.3f}"), f"{rub['overall'][m]['mean_100']:.1f}",
             ci_text(rub["overall"][m]["ci_100"], "{:.1f}"),
             f"{wb[m]['overall_100']:.1f}" if m in wb else "–",
             "95% CI, bootstrap over prompts", judges] for m in models]
    if ref:
        rows += [[f"{k} (published)", "–", f"{v:.2f}", "–", f"{10 * v:.1f}", "–", f"{10 * v:.1f}",
                  ref.get("interval", "–"), ref["judge"]] for k, v in ref["scores"].items()]
    parts = [f"<h2>Rubric scores (judges: {html.escape(judges)}; "
             "criterion scores 1-10, prompt score = mean of its criteria)</h2>",
             table(["model", "prompts", "mean of prompt scores (1-10)", "95% CI",
                    "mean of prompt scores (0-100)", "95% CI",
                    "WritingBench overall (0-100, pooled criteria)",
                    "interval convention", "judge"], rows),
             f'<img src="{img}" alt="rubric scores">', *writingbench_html(rub)]
    if rub["paired"]:
        parts += ["<h3>Paired comparisons (same prompts): mean difference a − b, paired "
                  "bootstrap 95% CI, Wilcoxon signed-rank p</h3>",
                  table(["a", "b", "prompts", "diff (1-10)", "95% CI", "diff (0-100)",
                          "95% CI (0-100)", "a better / worse / equal", "Wilcoxon p"],
                         [[c["a"], c["b"], c["n"], f"{c['mean_diff']:+.3f}",
                           ci_text([c["ci_low"], c["ci_high"]], "{:+.3f}"),
                           f"{c['mean_diff_100']:+.1f}", ci_text(c["ci_100"], "{:+.1f}"),
                           f"{c['wins']} / {c['losses']} / {c['ties']}", format_p(c["wilcoxon_p"])]
                          for c in rub["paired"]])]
    for key, title in (("by_language", "language"), ("by_domain", "domain"),
                       ("by_subdomain", "subdomain"), ("by_criterion", "criterion")):
        if rub[key]:
            parts += [f"<h3>Rubric means by {title} (95% CI)</h3>", group_table(rub[key], models)]
    return parts


def write_report(result: dict[str, Any], lengths: dict[str, list[int]], out: Path) -> dict[str, Path]:
    """Write results.json, PNGs and report.html under `out`; returns the written paths."""
    out.mkdir(parents=True, exist_ok=True)
    font = use_cjk_font()
    files: dict[str, Path] = {"json": out / "results.json"}
    files["json"].write_text(json.dumps(result, ensure_ascii=False, indent=2), "utf-8")
    refs = result.get("reference_benchmarks", {})
    informative = (result.get("informative") or {}).get("pairwise", True)
    parts = [*warnings_html(result), *header_html(result)]
    if font is None:
        parts.append("<p><b>No CJK font available: Chinese labels in plots may not render "
                     "(pip install noto-cjk-sans-otc).</b></p>")
    parts += judges_html(result)
    if "rubric" in result:
        files["rubric"] = out / "rubric_scores.png"
        rubric_plot(result["rubric"], refs, files["rubric"])
        parts += _rubric_html(result["rubric"], refs, files["rubric"].name)
    if "overall" in result:
        parts += _pairwise_html(result, lengths, out, files)
    if result.get("arena"):
        files["arena"] = out / "arena_scores.png"
        arena_plot(result["arena"], refs, files["arena"], informative)
        parts += arena_html(result["arena"], files["arena"].name, informative,
                            (result.get("informative") or {}).get("judges_not_informative"))
    parts += _bias_html(result, out, files)
    parts += published_html(result)
    style = ("body{font-family:'Noto Sans CJK SC',sans-serif;max-width:1100px;margin:auto}"
             "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;"
             "padding:3px 6px;font-size:13px}img{max-width:100%;display:block;margin:8px 0}")
    files["html"] = out / "report.html"
    files["html"].write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>coig-writer"
                             f" evaluation</title><style>{style}</style></head><body>"
                             + "\n".join(parts) + "</body></html>", "utf-8")
    return files


def _bias_html(result: dict[str, Any], out: Path, files: dict[str, Path]) -> list[str]:
    parts: list[str] = []
    bias = result.get("bias") or {}
    if bias.get("position"):
        b = bias["position"]
        pooled = " (all judges pooled; each judge alone in the Judges table)" \
            if len(result["judges"]) > 1 else ""
        parts += [f"<h2>Judge bias{pooled}</h2><h3>Position</h3>",
                  table(["pairs judged in both orders", "verdict flips with order",
                          "decisive verdicts", "won by the answer shown first", "binomial p"],
                         [[b["pairs_both_orders"], pct(b["inconsistent_rate"]),
                           b["decisive_verdicts"], pct(b["first_position_rate"]),
                           format_p(b["first_position_p"])]])]
    if bias.get("length"):
        lb = bias["length"]
        files["length_bias"] = out / "length_bias.png"
        length_bias_plot(lb, files["length_bias"])
        parts += ["<h3>Length</h3>",
                  table(["pairs", "longer answer's win rate", "95% CI", "Spearman ρ", "p",
                         "slope (points per unit of length difference)", "slope p"],
                        [[lb["n_pairs"], pct(lb["longer_win_rate"]),
                          ci_text([x and 100 * x for x in lb["longer_ci"]], "{:.1f}"),
                          num(lb["spearman"]), format_p(lb["spearman_p"]),
                          num(lb.get("slope") and 100 * lb["slope"], "{:+.0f}"),
                          format_p(lb.get("slope_p"))]]),
                  f'<img src="{files["length_bias"].name}" alt="length bias">']
    for key, title in (("pairwise_vs_rubric", "Pairwise verdicts vs rubric scores (same pairs)"),):
        if bias.get(key):
            parts += [f"<h3>{title}</h3>", agreement_table(bias[key])]
    for key, title in (("judge_vs_human", "Judge vs. human agreement"),
                       ("rubric_vs_human", "Rubric judge vs. human agreement")):
        if result.get(key):
            parts += [f"<h2>{title}</h2>", agreement_table(result[key])]
    return parts


def _pairwise_html(result: dict[str, Any], lengths: dict[str, list[int]], out: Path,
                   files: dict[str, Path]) -> list[str]:
    o = result["overall"]
    files["diversity"] = out / "diversity_vs_win_rate.png"
    diversity_scatter(result, files["diversity"])
    files["lengths"] = out / "lengths.png"
    lengths_plot(lengths, files["lengths"])
    if (result.get("informative") or {}).get("pairwise", True):
        parts = _win_rate_html(result, out, files)
    else:
        parts = [f"<p>Pairwise/ranking prompts: {o['n_prompts']}</p>",
                 "<h2>Win rates, Bradley–Terry ratings and length control</h2>",
                 *not_informative_html(result)]
    return parts + _answers_html(result, files)


def _win_rate_html(result: dict[str, Any], out: Path, files: dict[str, Path]) -> list[str]:
    o = result["overall"]
    ref = result["reference_paper"]
    files["heatmap"] = out / "win_rates.png"
    heatmap(o, f"Win rates ({result['source']}), all prompts", files["heatmap"])
    for lang, sec in result["by_language"].items():
        files[f"heatmap_{lang}"] = out / f"win_rates_{lang}.png"
        heatmap(sec, f"Win rates ({result['source']}), {lang} prompts", files[f"heatmap_{lang}"])
    parts = [f"<p>Pairwise/ranking prompts: {o['n_prompts']}</p>",
             "<h2>Win rates (row vs column, %, 95% bootstrap CI, sign-test p)</h2>",
             matrix_table(o), f'<img src="{files["heatmap"].name}" alt="win-rate heatmap">']
    if vs_g_plot(result, out / "win_rate_vs_G.png"):
        files["vs_g"] = out / "win_rate_vs_G.png"
        parts.append(f'<img src="{files["vs_g"].name}" alt="win rate vs G, paper beside ours">')
    for lang, sec in result["by_language"].items():
        parts += [f"<h3>{lang} prompts ({sec['n_prompts']})</h3>", matrix_table(sec),
                  f'<img src="win_rates_{lang}.png" alt="win rates {lang}">']
    if "cross_lingual_gap" in result:
        gap = {"models": o["models"], "gap": result["cross_lingual_gap"]}
        parts += ["<h2>Cross-lingual gap (zh − en win rate, points)</h2>", matrix_table(gap, "gap")]
    parts += ["<h2>Bradley–Terry ratings (log strength, 95% CI) and length control (fitted on "
              "lengths relative to each language's mean)</h2>",
              table(["model", "BT", "CI", "mean win rate", "LC win rate vs others (mean)",
                      "paper: win rate vs G (human)"],
                     [[m, f"{o['bradley_terry'][i]:+.2f}",
                       f"[{o['bt_ci_low'][i]:+.2f}, {o['bt_ci_high'][i]:+.2f}]",
                       pct(o["mean_win_rate"][i]),
                       pct(row_mean(o.get("length_controlled"), i)), paper_vs_g(ref, m)]
                      for i, m in enumerate(o["models"])])]
    return parts


def _answers_html(result: dict[str, Any], files: dict[str, Path]) -> list[str]:
    o = result["overall"]
    div_rows = []
    for m, langs in result["diversity"].items():
        for lang, d in langs.items():
            div_rows.append([m, lang, d["chars"]["n"], f"{d['chars']['mean']:.0f}",
                             *(f"{d[k]['mean']:.3f} / {d[k]['median']:.3f}"
                               for k in ("ttr_word", "mattr_word", "mtld_word", "ttr_char"))])
    genre_models = o["models"]
    return ["<h2>Lexical diversity (mean / median per answer)</h2>",
              table(["model", "prompts", "n", "chars", "TTR word", "MATTR word", "MTLD word",
                      "TTR char"], div_rows),
              f'<img src="{files["diversity"].name}" alt="diversity vs win rate">',
              f'<img src="{files["lengths"].name}" alt="answer lengths">',
              "<h2>Diversity vs. win rate (Pearson / Spearman, 95% CI)</h2>",
              table(["set:metric", "n", "Pearson r [CI]", "p", "Spearman ρ [CI]", "p"],
                     [[k, c["n"], f"{c['pearson']:.2f} {ci_text(c['pearson_ci'])}",
                       format_p(c["pearson_p"]), f"{c['spearman']:.2f} {ci_text(c['spearman_ci'])}",
                       format_p(c["spearman_p"])]
                      for k, c in result["diversity_vs_win_rate"].items()]),
              "<h2>Generations: truncated answers (cut at max_tokens after one retry) and "
              "thinking split off</h2>",
              table(["model", "answers", "truncated", "with thinking", "completion tokens"],
                     [[m, c["n"], c["truncated"], c["with_thinking"],
                       c["completion_tokens"] if c["completion_tokens"] is not None else "-"]
                      for m, c in result.get("generations", {}).items()]),
              "<h2>Language contamination (answers not in the prompt's language)</h2>",
              table(["model", "prompts", "n", "wrong language", "rate"],
                     [[m, lang, c["n"], c["wrong_language"], pct(c["rate"])]
                      for m, d in result["contamination"].items() for lang, c in d.items()]),
              "<h2>Per genre: mean win rate of each model against the others (%)</h2>",
              table(["genre", "prompts", *genre_models],
                     [[g, d["n_prompts"], *(pct(v) for v in d["mean_win_rate"])]
                      for g, d in result["by_genre"].items()])]
