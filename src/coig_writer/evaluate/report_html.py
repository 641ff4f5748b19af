"""HTML pieces of the report: tables, formatted numbers and intervals."""

from __future__ import annotations

import html
from typing import Any

from .stats import format_p


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def table(header: list[str], rows: list[list[Any]]) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def cell(sec: dict[str, Any], key: str, i: int, j: int) -> str:
    v = sec[key][i][j]
    if v is None:
        return "–"
    if key == "gap":
        return f"{100 * v:+.1f}"
    p = sec["sign_test_p"][i][j]
    return (f"{pct(v)} [{pct(sec['ci_low'][i][j])}, {pct(sec['ci_high'][i][j])}]"
            + (f" p={format_p(p)}" if p is not None else ""))


def matrix_table(sec: dict[str, Any], key: str = "win_rate") -> str:
    models = sec["models"]
    rows = [[m, *(cell(sec, key, i, j) for j in range(len(models)))] for i, m in enumerate(models)]
    return table(["row vs column", *models], rows)


def ci_text(c: list[float | None] | tuple | None, fmt: str = "{:.2f}") -> str:
    """A formatted CI; says so when it is undefined instead of printing a collapsed one."""
    if not c or c[0] is None or c[1] is None:
        return "CI undefined (too few points or |r| = 1)"
    return "[" + fmt.format(c[0]) + ", " + fmt.format(c[1]) + "]"


def num(x: float | None, fmt: str = "{:.2f}") -> str:
    return "–" if x is None else fmt.format(x)


def paper_vs_g(ref: dict[str, Any], model: str) -> str:
    zh, en = ref["win_rate_vs_G"]["zh"].get(model), ref["win_rate_vs_G"]["en"].get(model)
    return "–" if zh is None else f"zh {pct(zh)} / en {pct(en)}"


def group_table(groups: dict[str, Any], models: list[str]) -> str:
    rows = [[g, *(f"{num(d[m]['mean'])} {ci_text(d[m]['ci'])} (n={d[m]['n']})" if m in d else "–"
                  for m in models)] for g, d in groups.items()]
    return table(["group", *models], rows)


def agreement_table(a: dict[str, Any]) -> str:
    return table(["decisions", "agreement", "Cohen's κ", "95% CI"],
                  [[a["n"], pct(a["percent_agreement"]), f"{a['cohen_kappa']:.3f}",
                    ci_text(a.get("kappa_ci"), "{:.3f}")]])


def row_mean(M: list[list[float | None]] | None, i: int) -> float | None:
    if not M:
        return None
    vals = [v for j, v in enumerate(M[i]) if j != i and v is not None]
    return sum(vals) / len(vals) if vals else None
