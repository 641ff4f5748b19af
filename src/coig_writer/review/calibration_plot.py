"""The calibration plot (PNG): precision against recall of every swept threshold pair, for
integer and expected scores, with the gate's stored verdicts, the target precision and the
chosen thresholds marked. CJK-capable fonts as the evaluation report chooses them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"argmax": "C0", "expected": "C1"}
LABELS = {"argmax": "integer scores", "expected": "expected scores"}


def thresholds(row: dict[str, Any]) -> str:
    return f"each>={row['min_each']:g}, sum>={row['min_sum']:g}"


def calibration_plot(report: dict[str, Any], path: Path) -> None:
    """Write the plot of a `calibration.calibrate` report to `path`."""
    from ..evaluate.report import use_cjk_font

    use_cjk_font()
    fig, ax = plt.subplots(figsize=(7, 5))
    for kind, sec in report["sweeps"].items():
        pts = [(r["recall"], r["precision"]) for r in sec["rows"] if r["precision"] is not None]
        if not pts:
            continue
        ax.scatter(*zip(*pts, strict=True), s=10, alpha=0.25, color=COLORS[kind])
        front = [(r["recall"], r["precision"]) for r in sec["frontier"]]
        ax.plot(*zip(*front, strict=True), "-o", ms=3, color=COLORS[kind],
                label=f"{LABELS[kind]} ({sec['n']} items)")
        if sec["best"]:
            b = sec["best"]
            ax.scatter([b["recall"]], [b["precision"]], marker="D", s=60, facecolors="none",
                       edgecolors=COLORS[kind], zorder=3,
                       label=f"{LABELS[kind]}: {thresholds(b)}")
    g = report["gate"]
    if g["precision"] is not None and g["recall"] is not None:
        ax.scatter([g["recall"]], [g["precision"]], marker="*", s=160, color="C3", zorder=3,
                   label="the gate's stored verdicts")
    ax.axhline(report["target_precision"], ls="--", color="gray", lw=1,
               label=f"target precision {report['target_precision']:g}")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.05)
    ax.set_xlabel("recall (share of human-accepted items the gate accepts)")
    ax.set_ylabel("precision (share of gate-accepted items humans accept)")
    ax.set_title(f"Gate vs. reviewers, {report['units']} items (门控与人工评审)")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
