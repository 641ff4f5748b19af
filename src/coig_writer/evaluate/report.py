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
            + (f" p={format_p(p)}" if p is not None else ""))


def _matrix_table(sec: dict[str, Any], key: str = "win_rate") -> str:
    models = sec["models"]
    rows = [[m, *(_cell(sec, key, i, j) for j in range(len(models)))] for i, m in enumerate(models)]
    return _table(["row vs column", *models], rows)


def _ci(c: list[float | None] | tuple | None, fmt: str = "{:.2f}") -> str:
    """A formatted CI; says so when it is undefined instead of printing a collapsed one."""
    if not c or c[0] is None or c[1] is None:
        return "CI undefined (too few points or |r| = 1)"
    return "[" + fmt.format(c[0]) + ", " + fmt.format(c[1]) + "]"


def _num(x: float | None, fmt: str = "{:.2f}") -> str:
    return "–" if x is None else fmt.format(x)


def _paper_vs_g(ref: dict[str, Any], model: str) -> str:
    zh, en = ref["win_rate_vs_G"]["zh"].get(model), ref["win_rate_vs_G"]["en"].get(model)
    return "–" if zh is None else f"zh {_pct(zh)} / en {_pct(en)}"


def rubric_plot(rub: dict[str, Any], refs: dict[str, Any], path: Path) -> None:
    """Per-model rubric means with 95% CIs, published WritingBench numbers beside them."""
    names = list(rub["models"])
    means = [rub["overall"][m]["mean"] for m in names]
    err = [[m - rub["overall"][n]["ci"][0] for m, n in zip(means, names, strict=True)],
           [rub["overall"][n]["ci"][1] - m for m, n in zip(means, names, strict=True)]]
    ref = refs.get("writingbench", {}).get("scores", {})
    fig, ax = plt.subplots(figsize=(1.2 * (len(names) + len(ref)) + 3, 4))
    ax.bar(range(len(names)), means, yerr=err, capsize=4, color="C0", label="ours")
    if ref:
        ax.bar(range(len(names), len(names) + len(ref)), list(ref.values()), color="lightgray",
               hatch="//", label="WritingBench paper (critic model judge, all domains)")
    ax.set_xticks(range(len(names) + len(ref)), names + [f"{k} (paper)" for k in ref],
                  rotation=30, ha="right")
    ax.set_ylim(1, 10)
    ax.set_ylabel("rubric score (1-10, mean of criteria)")
    ax.set_title("Rubric scores (评分), 95% bootstrap CI")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def arena_plot(arena: dict[str, Any], refs: dict[str, Any], path: Path) -> None:
    names = list(arena["models"])
    sc, lo, hi = arena["score"], arena["ci_low"], arena["ci_high"]
    ref = refs.get("arena-hard-creative", {}).get("scores", {})
    fig, ax = plt.subplots(figsize=(6, 0.5 * (len(names) + len(ref)) + 1.5))
    y = list(range(len(names)))
    ax.errorbar(sc, y, xerr=[[s - a for s, a in zip(sc, lo, strict=True)],
                             [b - s for s, b in zip(sc, hi, strict=True)]], fmt="o", capsize=4,
                label="ours")
    ry = list(range(len(names), len(names) + len(ref)))
    if ref:
        ax.scatter(list(ref.values()), ry, marker="s", color="gray", label="published (GPT-4.1 "
                   "+ Gemini-2.5 judges)")
    ax.set_yticks(y + ry, names + [f"{k} (published)" for k in ref])
    ax.axvline(50, color="k", lw=0.8, ls="--")
    ax.set_xlabel(f"score vs {arena['baseline']} (= 50)")
    ax.set_title("Arena-Hard creative writing")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def vs_g_plot(result: dict[str, Any], path: Path, base: str = "G") -> bool:
    """Win rate against G per model and language, the paper's numbers beside ours."""
    ref = result["reference_paper"]["win_rate_vs_G"]
    langs = [lang for lang in ("zh", "en") if lang in result["by_language"]]
    sec0 = result["overall"]
    if base not in sec0["models"] or not langs:
        return False
    g = sec0["models"].index(base)
    names = [m for m in sec0["models"] if m != base]
    fig, axes = plt.subplots(1, len(langs), figsize=(5 * len(langs), 4), squeeze=False)
    for ax, lang in zip(axes[0], langs, strict=True):
        sec = result["by_language"][lang]
        idx = [sec["models"].index(m) for m in names]
        ours = [sec["win_rate"][i][g] for i in idx]
        lo = [sec["ci_low"][i][g] for i in idx]
        hi = [sec["ci_high"][i][g] for i in idx]
        x = range(len(names))
        ax.bar([i - 0.2 for i in x], [v or 0 for v in ours], 0.4, label="ours",
               yerr=[[(v or 0) - (a or 0) for v, a in zip(ours, lo, strict=True)],
                     [(b or 0) - (v or 0) for v, b in zip(ours, hi, strict=True)]], capsize=3)
        ax.bar([i + 0.2 for i in x], [ref[lang].get(m, 0) for m in names], 0.4, color="lightgray",
               hatch="//", label="paper (human ranking)")
        ax.axhline(0.5, color="k", lw=0.8, ls="--")
        ax.set_xticks(list(x), names, rotation=30, ha="right")
        ax.set_ylim(0, 1)
        ax.set_title(f"{lang}: win rate vs {base}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def length_bias_plot(lb: dict[str, Any], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    mid = [(b["from"] + b["to"]) / 2 for b in lb["bins"]]
    ax.plot(mid, [b["win_rate"] for b in lb["bins"]], "o-")
    ax.axhline(0.5, color="k", lw=0.8, ls="--")
    ax.set_xlabel("relative length difference (len_a - len_b) / (len_a + len_b)")
    ax.set_ylabel("win rate of answer a")
    ax.set_title("Length bias of the judge (长度偏好)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _group_table(groups: dict[str, Any], models: list[str]) -> str:
    rows = [[g, *(f"{_num(d[m]['mean'])} {_ci(d[m]['ci'])} (n={d[m]['n']})" if m in d else "–"
                  for m in models)] for g, d in groups.items()]
    return _table(["group", *models], rows)


def _rubric_html(rub: dict[str, Any], refs: dict[str, Any], img: str) -> list[str]:
    models = rub["models"]
    ref = refs.get("writingbench")
    rows = [[m, rub["overall"][m]["n"], f"{rub['overall'][m]['mean']:.3f}",
             _ci(rub["overall"][m]["ci"], "{:.3f}"), f"{rub['overall'][m]['mean_100']:.1f}",
             _ci(rub["overall"][m]["ci_100"], "{:.1f}")] for m in models]
    if ref:
        rows += [[f"{k} (published)", "–", f"{v:.2f}", "–", f"{10 * v:.1f}", ref["judge"]]
                 for k, v in ref["scores"].items()]
    parts = [f"<h2>Rubric scores (judges: {html.escape(', '.join(rub['judges']))}; "
             "criterion scores 1-10, prompt score = mean of its criteria)</h2>",
             _table(["model", "prompts", "mean (1-10)", "95% CI", "score (0-100)", "95% CI"],
                    rows), f'<img src="{img}" alt="rubric scores">']
    if rub["paired"]:
        parts += ["<h3>Paired comparisons (same prompts): mean difference a − b, paired "
                  "bootstrap 95% CI, Wilcoxon signed-rank p</h3>",
                  _table(["a", "b", "prompts", "diff (1-10)", "95% CI", "diff (0-100)",
                          "95% CI (0-100)", "a better / worse / equal", "Wilcoxon p"],
                         [[c["a"], c["b"], c["n"], f"{c['mean_diff']:+.3f}",
                           _ci([c["ci_low"], c["ci_high"]], "{:+.3f}"),
                           f"{c['mean_diff_100']:+.1f}", _ci(c["ci_100"], "{:+.1f}"),
                           f"{c['wins']} / {c['losses']} / {c['ties']}", format_p(c["wilcoxon_p"])]
                          for c in rub["paired"]])]
    for key, title in (("by_language", "language"), ("by_domain", "domain"),
                       ("by_subdomain", "subdomain"), ("by_criterion", "criterion")):
        if rub[key]:
            parts += [f"<h3>Rubric means by {title} (95% CI)</h3>", _group_table(rub[key], models)]
    return parts


def write_report(result: dict[str, Any], lengths: dict[str, list[int]], out: Path) -> dict[str, Path]:
    """Write results.json, PNGs and report.html under `out`; returns the written paths."""
    out.mkdir(parents=True, exist_ok=True)
    font = use_cjk_font()
    files: dict[str, Path] = {"json": out / "results.json"}
    files["json"].write_text(json.dumps(result, ensure_ascii=False, indent=2), "utf-8")
    refs = result.get("reference_benchmarks", {})
    parts = [f"<h1>coig-writer evaluation ({html.escape(result['source'])})</h1>",
             f"<p>Judges: {html.escape(', '.join(result['judges']))};"
             f" bootstrap rounds: {result['bootstrap_rounds']} (all CIs, Bradley–Terry included);"
             f" pair consistency: {html.escape(json.dumps(result['pair_consistency']))}</p>"]
    parts += [f"<p><b>Warning:</b> {html.escape(w)}</p>" for w in result.get("warnings", [])]
    if font is None:
        parts.append("<p><b>No CJK font available: Chinese labels in plots may not render "
                     "(pip install noto-cjk-sans-otc).</b></p>")
    if "rubric" in result:
        files["rubric"] = out / "rubric_scores.png"
        rubric_plot(result["rubric"], refs, files["rubric"])
        parts += _rubric_html(result["rubric"], refs, files["rubric"].name)
    if "overall" in result:
        parts += _pairwise_html(result, lengths, out, files)
    if result.get("arena"):
        a = result["arena"]
        files["arena"] = out / "arena_scores.png"
        arena_plot(a, refs, files["arena"])
        ref = refs.get("arena-hard-creative")
        rows = [[m, f"{a['score'][i]:.1f}", _ci([a["ci_low"][i], a["ci_high"][i]], "{:.1f}"),
                 f"{a['battles_vs_baseline'][i]:.0f}"] for i, m in enumerate(a["models"])]
        if ref:
            rows += [[f"{k} (published)", f"{v:.1f}", ref["judge"], "–"]
                     for k, v in ref["scores"].items()]
        parts += [f"<h2>Arena-Hard score vs {html.escape(a['baseline'])} (= 50; A&gt;&gt;B = 3 "
                  f"battles, ties ½; {a['rounds']} bootstrap rounds over prompts)</h2>",
                  _table(["model", "score", "95% CI", "battles vs baseline"], rows),
                  f"<p>Verdicts: {html.escape(json.dumps(a['verdicts']))}</p>",
                  f'<img src="{files["arena"].name}" alt="arena scores">']
    parts += _bias_html(result, out, files)
    ref = result["reference_paper"]
    parts += ["<h2>Reference: the paper's published numbers</h2>",
              f"<p>{html.escape(ref['source'])}. {html.escape(ref['note'])}</p>",
              _table(["model", "zh win rate vs G", "en win rate vs G"],
                     [[m, _pct(ref["win_rate_vs_G"]["zh"].get(m)),
                       _pct(ref["win_rate_vs_G"]["en"].get(m))] for m in ref["models"][:-1]]),
              _table(["model", "TTR (zh, mean)"], [[m, v] for m, v in ref["ttr_mean_zh"].items()])]
    for key, r in refs.items():
        parts += [f"<h3>Published {html.escape(key)} numbers ({html.escape(r['scale'])}; judge: "
                  f"{html.escape(r['judge'])})</h3><p>{html.escape(r['source'])}</p>",
                  _table(["model", "score"], [[k, v] for k, v in r["scores"].items()])]
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
        parts += ["<h2>Judge bias</h2><h3>Position</h3>",
                  _table(["pairs judged in both orders", "verdict flips with order",
                          "decisive verdicts", "won by the answer shown first", "binomial p"],
                         [[b["pairs_both_orders"], _pct(b["inconsistent_rate"]),
                           b["decisive_verdicts"], _pct(b["first_position_rate"]),
                           format_p(b["first_position_p"])]])]
    if bias.get("length"):
        lb = bias["length"]
        files["length_bias"] = out / "length_bias.png"
        length_bias_plot(lb, files["length_bias"])
        parts += ["<h3>Length</h3>",
                  _table(["pairs", "longer answer's win rate", "95% CI", "Spearman ρ", "p"],
                         [[lb["n_pairs"], _pct(lb["longer_win_rate"]),
                           _ci([x and 100 * x for x in lb["longer_ci"]], "{:.1f}"),
                           _num(lb["spearman"]), format_p(lb["spearman_p"])]]),
                  f'<img src="{files["length_bias"].name}" alt="length bias">']
    for key, title in (("pairwise_vs_rubric", "Pairwise verdicts vs rubric scores (same pairs)"),):
        if bias.get(key):
            parts += [f"<h3>{title}</h3>", _agreement_table(bias[key])]
    for key, title in (("judge_vs_human", "Judge vs. human agreement"),
                       ("rubric_vs_human", "Rubric judge vs. human agreement")):
        if result.get(key):
            parts += [f"<h2>{title}</h2>", _agreement_table(result[key])]
    return parts


def _agreement_table(a: dict[str, Any]) -> str:
    return _table(["decisions", "agreement", "Cohen's κ", "95% CI"],
                  [[a["n"], _pct(a["percent_agreement"]), f"{a['cohen_kappa']:.3f}",
                    _ci(a.get("kappa_ci"), "{:.3f}")]])


def _pairwise_html(result: dict[str, Any], lengths: dict[str, list[int]], out: Path,
                   files: dict[str, Path]) -> list[str]:
    o = result["overall"]
    ref = result["reference_paper"]
    files["heatmap"] = out / "win_rates.png"
    heatmap(o, f"Win rates ({result['source']}), all prompts", files["heatmap"])
    for lang, sec in result["by_language"].items():
        files[f"heatmap_{lang}"] = out / f"win_rates_{lang}.png"
        heatmap(sec, f"Win rates ({result['source']}), {lang} prompts", files[f"heatmap_{lang}"])
    files["diversity"] = out / "diversity_vs_win_rate.png"
    diversity_scatter(result, files["diversity"])
    files["lengths"] = out / "lengths.png"
    lengths_plot(lengths, files["lengths"])
    parts = [f"<p>Pairwise/ranking prompts: {o['n_prompts']}</p>",
             "<h2>Win rates (row vs column, %, 95% bootstrap CI, sign-test p)</h2>",
             _matrix_table(o), f'<img src="{files["heatmap"].name}" alt="win-rate heatmap">']
    if vs_g_plot(result, out / "win_rate_vs_G.png"):
        files["vs_g"] = out / "win_rate_vs_G.png"
        parts.append(f'<img src="{files["vs_g"].name}" alt="win rate vs G, paper beside ours">')
    for lang, sec in result["by_language"].items():
        parts += [f"<h3>{lang} prompts ({sec['n_prompts']})</h3>", _matrix_table(sec),
                  f'<img src="win_rates_{lang}.png" alt="win rates {lang}">']
    if "cross_lingual_gap" in result:
        gap = {"models": o["models"], "gap": result["cross_lingual_gap"]}
        parts += ["<h2>Cross-lingual gap (zh − en win rate, points)</h2>", _matrix_table(gap, "gap")]
    parts += ["<h2>Bradley–Terry ratings (log strength, 95% CI) and length control (fitted on "
              "lengths relative to each language's mean)</h2>",
              _table(["model", "BT", "CI", "mean win rate", "LC win rate vs others (mean)",
                      "paper: win rate vs G (human)"],
                     [[m, f"{o['bradley_terry'][i]:+.2f}",
                       f"[{o['bt_ci_low'][i]:+.2f}, {o['bt_ci_high'][i]:+.2f}]",
                       _pct(o["mean_win_rate"][i]),
                       _pct(_row_mean(o.get("length_controlled"), i)), _paper_vs_g(ref, m)]
                      for i, m in enumerate(o["models"])])]
    div_rows = []
    for m, langs in result["diversity"].items():
        for lang, d in langs.items():
            div_rows.append([m, lang, d["chars"]["n"], f"{d['chars']['mean']:.0f}",
                             *(f"{d[k]['mean']:.3f} / {d[k]['median']:.3f}"
                               for k in ("ttr_word", "mattr_word", "mtld_word", "ttr_char"))])
    genre_models = o["models"]
    parts += ["<h2>Lexical diversity (mean / median per answer)</h2>",
              _table(["model", "prompts", "n", "chars", "TTR word", "MATTR word", "MTLD word",
                      "TTR char"], div_rows),
              f'<img src="{files["diversity"].name}" alt="diversity vs win rate">',
              f'<img src="{files["lengths"].name}" alt="answer lengths">',
              "<h2>Diversity vs. win rate (Pearson / Spearman, 95% CI)</h2>",
              _table(["set:metric", "n", "Pearson r [CI]", "p", "Spearman ρ [CI]", "p"],
                     [[k, c["n"], f"{c['pearson']:.2f} {_ci(c['pearson_ci'])}",
                       format_p(c["pearson_p"]), f"{c['spearman']:.2f} {_ci(c['spearman_ci'])}",
                       format_p(c["spearman_p"])]
                      for k, c in result["diversity_vs_win_rate"].items()]),
              "<h2>Generations: truncated answers (cut at max_tokens after one retry) and "
              "thinking split off</h2>",
              _table(["model", "answers", "truncated", "with thinking", "completion tokens"],
                     [[m, c["n"], c["truncated"], c["with_thinking"],
                       c["completion_tokens"] if c["completion_tokens"] is not None else "-"]
                      for m, c in result.get("generations", {}).items()]),
              "<h2>Language contamination (answers not in the prompt's language)</h2>",
              _table(["model", "prompts", "n", "wrong language", "rate"],
                     [[m, lang, c["n"], c["wrong_language"], _pct(c["rate"])]
                      for m, d in result["contamination"].items() for lang, c in d.items()]),
              "<h2>Per genre: mean win rate of each model against the others (%)</h2>",
              _table(["genre", "prompts", *genre_models],
                     [[g, d["n_prompts"], *(_pct(v) for v in d["mean_win_rate"])]
                      for g, d in result["by_genre"].items()])]
    return parts


def _row_mean(M: list[list[float | None]] | None, i: int) -> float | None:
    if not M:
        return None
    vals = [v for j, v in enumerate(M[i]) if j != i and v is not None]
    return sum(vals) / len(vals) if vals else None
