"""The figures of `construct audit-gates` from the gate's verdicts on originals and variants:
per variant kind the share caught (status not accepted) and by what, the AUC of the six-score
sum original against variant (Mann-Whitney U / (n1 n2)) with a stratified percentile bootstrap
CI, for the integers and for the expected scores, and a verdict line. Pure: no LLM, no store.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import mannwhitneyu

from ..records import SCORE_DIMENSIONS, Scores
from .verdict import compared_scores, score_failures

SCHEMA = "coig-writer/audit-gates/1"
CI_METHOD = "stratified percentile bootstrap (originals and variants resampled separately)"
CI_ROUNDS = 2000
CATCH_SHARE = 0.8  # "catches": at least this share of the variants not accepted ...
FALSE_REJECT_SHARE = 0.2  # ... while at most this share of the originals is not accepted


def auc(originals: Sequence[float], variants: Sequence[float]) -> float | None:
    """P(an original's score > a variant's), ties counting half: Mann-Whitney U / (n1 n2).
    None when either side is empty."""
    if not len(originals) or not len(variants):
        return None
    u = mannwhitneyu(originals, variants, alternative="two-sided").statistic
    return float(u) / (len(originals) * len(variants))


def auc_ci(originals: Sequence[float], variants: Sequence[float], rounds: int = CI_ROUNDS,
           seed: int = 0, level: float = 0.95) -> tuple[float, float] | None:
    """Percentile CI of the AUC, resampling originals and variants separately (with
    replacement); None when either side is empty."""
    x, y = np.asarray(originals, float), np.asarray(variants, float)
    if not x.size or not y.size:
        return None
    wins = (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])  # (n1, n2)
    rng = np.random.default_rng(seed)
    ca = np.stack([np.bincount(r, minlength=x.size) for r in rng.integers(0, x.size, (rounds, x.size))])
    cb = np.stack([np.bincount(r, minlength=y.size) for r in rng.integers(0, y.size, (rounds, y.size))])
    boots = ((ca @ wins) * cb).sum(axis=1) / (x.size * y.size)
    a = (1 - level) / 2
    return float(np.quantile(boots, a)), float(np.quantile(boots, 1 - a))


def auc_block(originals: Sequence[float], variants: Sequence[float], seed: int = 0
              ) -> dict[str, Any] | None:
    value = auc(originals, variants)
    if value is None:
        return None
    ci = auc_ci(originals, variants, seed=seed)
    return {"auc": round(value, 4), "ci": [round(ci[0], 4), round(ci[1], 4)] if ci else None,
            "n_original": len(originals), "n_variant": len(variants)}


# -- one verdict ------------------------------------------------------------------------------
def score_sums(v: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """(sum of the six integers, sum of the six expected scores) of a stored verdict; None
    where the score stage gave no answer or the server no probabilities."""
    scores, exp = v.get("scores"), v.get("expected_scores")
    if not scores:
        return None, None
    ints = float(sum(scores[d] for d in SCORE_DIMENSIONS))
    if not exp or any(d not in exp for d in SCORE_DIMENSIONS):
        return ints, None
    return ints, float(sum(exp[d] for d in SCORE_DIMENSIONS))


def llm_causes(v: Mapping[str, Any], min_each: float, min_sum: float) -> list[str]:
    """What the LLM part of the gate held against a verdict: `incoherent`, `low scores`, or a
    stage that gave no usable answer."""
    out = []
    val = v.get("validation") or {}
    if not val:
        out.append("no validation answer")
    elif not val.get("coherent", True):
        out.append("incoherent")
    if not v.get("scores"):
        out.append("no score answer")
    else:
        rule = v.get("score_rule") or "argmax"
        vals, _ = compared_scores(Scores(**v["scores"]), v.get("expected_scores"), rule)
        if score_failures(vals, min_each, min_sum, rule):
            out.append("low scores")
    return out


def causes(v: Mapping[str, Any], min_each: float, min_sum: float) -> list[str]:
    """Why a verdict is not `accepted`: the failed named checks (fail and review severity);
    when none failed, what the validation and scores held against it ("low scores")."""
    if v["status"] == "accepted":
        return []
    checks = list(v.get("checks") or []) + list(v.get("review_checks") or [])
    return checks or llm_causes(v, min_each, min_sum) or ["other"]


def row_of(v: Mapping[str, Any], rid: str, kind: str | None, of: str, min_each: float,
           min_sum: float) -> dict[str, Any]:
    ints, exp = score_sums(v)
    return {"id": rid, "variant": kind, "of": of, "status": v["status"],
            "checks": list(v.get("checks") or []) + list(v.get("review_checks") or []),
            "caught_by": causes(v, min_each, min_sum),
            "llm_caught": bool(llm_causes(v, min_each, min_sum)),
            "score_sum": ints, "expected_sum": None if exp is None else round(exp, 4),
            "reasons": list(v.get("reasons") or [])}


# -- per kind ---------------------------------------------------------------------------------
def group_figures(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    caught = [r for r in rows if r["status"] != "accepted"]
    return {"judged": n, "statuses": dict(Counter(r["status"] for r in rows).most_common()),
            "caught": len(caught), "caught_share": round(len(caught) / n, 4) if n else None,
            "caught_by": dict(Counter(c for r in caught for c in r["caught_by"]).most_common()),
            "caught_by_checks": sum(1 for r in rows if r["checks"]),
            "caught_by_llm": sum(1 for r in rows if r["llm_caught"])}


def aucs(orig: Sequence[Mapping[str, Any]], var: Sequence[Mapping[str, Any]], seed: int
         ) -> dict[str, Any]:
    out = {}
    for key, name in (("score_sum", "argmax"), ("expected_sum", "expected")):
        a = [r[key] for r in orig if r[key] is not None]
        b = [r[key] for r in var if r[key] is not None]
        out[name] = auc_block(a, b, seed)
    return out


def _auc_text(block: dict[str, Any], name: str) -> str:
    ci = block["ci"]
    return (f"AUC {block['auc']:.2f} on {name} scores, CI {ci[0]:.2f}-{ci[1]:.2f}" if ci
            else f"AUC {block['auc']:.2f} on {name} scores")


def verdict_line(label: str, fig: Mapping[str, Any], auc_by: Mapping[str, Any], rule: str,
                 originals: Mapping[str, Any]) -> str:
    """One sentence on whether the gate tells this kind of variant from a real triplet: what
    caught it (the named checks, or the gate's status), then what its scores say."""
    n, k = fig["judged"], fig["caught"]
    if not n:
        return f"no {label} could be judged"
    name = rule if auc_by.get(rule) else "argmax"
    block = auc_by.get(name)
    a_txt = _auc_text(block, name) if block else "no scores to compare"
    ci = block["ci"] if block else None
    lower, higher = bool(ci and ci[0] > 0.5), bool(ci and ci[1] < 0.5)
    top = ", ".join(f"{c} {m}" for c, m in list(fig["caught_by"].items())[:3])
    nj = originals.get("judged") or 0
    fr = originals.get("false_reject_rate")
    checks_clean = not nj or originals.get("caught_by_checks", 0) <= FALSE_REJECT_SHARE * nj
    if fig["caught_by_checks"] >= CATCH_SHARE * n and checks_clean:
        head = f"the named checks catch {label}: caught {fig['caught_by_checks']}/{n} ({top})"
    elif k >= CATCH_SHARE * n and (fr is None or fr <= FALSE_REJECT_SHARE):
        head = f"this gate catches {label}: caught {k}/{n} ({top})"
    elif k >= CATCH_SHARE * n:
        head = (f"this gate turns away {label} ({k}/{n}) but also "
                f"{originals['not_accepted']}/{nj} real triplets")
    elif lower:
        return (f"this gate's scores tell {label} from a real triplet ({a_txt}) but it accepts "
                f"{n - k}/{n} of them")
    elif higher:
        return f"this gate's scores prefer {label} to a real triplet ({a_txt}; caught {k}/{n})"
    else:
        return f"this gate cannot tell {label} from a real triplet ({a_txt}; caught {k}/{n})"
    tell = ("its scores rank the variants lower" if lower else
            "its scores even rank the variants higher" if higher else
            "its scores cannot tell them apart")
    also = (f"; the gate also turns away {originals['not_accepted']}/{nj} real triplets"
            if head.startswith("the named") and fr is not None and fr > FALSE_REJECT_SHARE else "")
    return f"{head}; {tell} ({a_txt}){also}"


def originals_figures(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    fig = group_figures(rows)
    fig["not_accepted"] = fig.pop("caught")
    fig["false_reject_rate"] = fig.pop("caught_share")
    fig["not_accepted_by"] = fig.pop("caught_by")
    return fig


def build_report(orig_rows: Sequence[Mapping[str, Any]],
                 var_rows: Mapping[str, Sequence[Mapping[str, Any]]],
                 kinds: Mapping[str, Any], *, rule: str, seed: int = 0,
                 skipped: Mapping[str, list[dict[str, str]]] | None = None,
                 examples: Mapping[str, dict[str, str]] | None = None) -> dict[str, Any]:
    """The report's `originals` and `variants` sections (the JSON schema in docs/gates.md)."""
    originals = {"n": len(orig_rows), **originals_figures(orig_rows)}
    out = []
    for kind, rows in var_rows.items():
        k = kinds[kind]
        fig = group_figures(rows)
        by = aucs(orig_rows, rows, seed)
        out.append({"kind": kind, "label": k.label, "changes": k.changes, "seen_by": k.seen_by,
                    "describes": k.describes, **fig, "auc": by,
                    "skipped": list((skipped or {}).get(kind, [])),
                    "example": (examples or {}).get(kind),
                    "verdict": verdict_line(k.label, fig, by, rule, originals)})
    return {"originals": originals, "variants": out}
