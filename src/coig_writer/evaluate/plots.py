"""The report's plots (PNG, CJK-capable fonts chosen by `report.use_cjk_font`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .report_html import pct  # noqa: E402


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
                ax.text(j, i, f"{pct(M[i][j])}\n[{pct(lo[i][j])}, {pct(hi[i][j])}]",
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


def arena_plot(arena: dict[str, Any], refs: dict[str, Any], path: Path,
               informative: bool = True) -> None:
    """Scores with Arena-Hard's 90% battle interval (thick) and our 95% prompt interval (thin),
    the published scores beside them; models without a score are listed without a point."""
    rows = [r for r in arena["rows"] if r["score"] is not None]
    ref = refs.get("arena-hard-creative", {}).get("scores", {})
    fig, ax = plt.subplots(figsize=(6.5, 0.5 * (len(rows) + len(ref)) + 2.6))
    y = list(range(len(rows)))
    if informative:
        for n, (key, style) in enumerate((("ci95_prompts", dict(lw=1, capsize=3)),
                                          ("ci90_battles", dict(lw=3, capsize=0)))):
            sc = [r["score"] for r in rows]
            ax.errorbar(sc, [v + 0.12 * n for v in y], fmt="o" if n else "none",
                        xerr=[[s - r[key][0] for s, r in zip(sc, rows, strict=True)],
                              [r[key][1] - s for s, r in zip(sc, rows, strict=True)]],
                        color="C0" if n else "C1", **style,
                        label=arena["interval_arena_hard"] if n else arena["interval_ours"])
    else:
        ax.text(50, (len(rows) - 1) / 2, "not informative: the judge picked one slot",
                ha="center", va="center", color="red")
    ry = list(range(len(rows), len(rows) + len(ref)))
    if ref:
        judge = refs["arena-hard-creative"].get("judge", "")
        ax.scatter(list(ref.values()), ry, marker="s", color="gray", label=f"published; judge: {judge}")
    ax.set_yticks(y + ry, [r["model"] for r in rows] + [f"{k} (published)" for k in ref])
    ax.set_xlim(0, 100)
    ax.axvline(50, color="k", lw=0.8, ls="--")
    ax.set_xlabel(f"score vs {arena['baseline']} (= 50)")
    ax.set_title("Arena-Hard creative writing")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1)
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
