"""Assemble every evaluation statistic from the store into one JSON-ready result."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from importlib import resources
from typing import Any

import numpy as np

from ..agreement import cohen_kappa
from ..langid import detect_language
from ..records import EvalPrompt, Generation
from ..store import Store
from . import stats as st
from .diversity import measure, summarize
from .judge import pair_outcomes, rank_outcomes


def reference_paper() -> dict[str, Any]:
    """The paper's published numbers (win rates vs G, TTR, contamination)."""
    res = resources.files("coig_writer").joinpath("data/eval/reference_paper.json")
    return json.loads(res.read_text("utf-8"))


def _clean(x: Any) -> Any:
    """NaN -> None and numpy -> Python, recursively, for JSON."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return _clean(x.tolist())
    if isinstance(x, (np.floating, float)):
        return None if math.isnan(float(x)) else round(float(x), 6)
    if isinstance(x, np.integer):
        return int(x)
    return x


def matrix_section(t: st.ScoreTensor, lengths: np.ndarray | None, rounds: int, seed: int
                   ) -> dict[str, Any]:
    M = st.win_rates(t)
    lo, hi = st.bootstrap_ci(t, rounds=rounds, seed=seed)
    wins, losses, p = st.sign_test(t)
    bt = st.bradley_terry(t)
    bt_lo, bt_hi = st.bradley_terry_ci(t, rounds=min(rounds, 300), seed=seed)
    out = {"models": t.models, "n_prompts": len(t.prompts), "win_rate": M, "ci_low": lo,
           "ci_high": hi, "wins": wins, "losses": losses, "sign_test_p": p,
           "bradley_terry": bt, "bt_ci_low": bt_lo, "bt_ci_high": bt_hi,
           "mean_win_rate": np.nanmean(np.where(np.eye(len(t.models)) == 1, np.nan, M), axis=1)
           if len(t.models) > 1 else np.array([np.nan])}
    if lengths is not None:
        out["length_controlled"] = st.length_controlled(t, lengths)
    return out


def _lengths(t: st.ScoreTensor, gens: dict[tuple[str, str], Generation]) -> np.ndarray:
    return np.array([[len(gens[(m, p)].answer) if (m, p) in gens else np.nan for m in t.models]
                     for p in t.prompts], dtype=float).reshape(len(t.prompts), len(t.models))


def diversity_table(prompts: dict[str, EvalPrompt], gens: list[Generation], models: list[str]
                    ) -> dict[str, Any]:
    per: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for g in gens:
        p = prompts.get(g.prompt_id)
        if p is None or g.model not in models:
            continue
        for lang in (p.lang, "all"):
            acc = per[(g.model, lang)]
            acc["chars"].append(len(g.answer))
            for level in ("word", "char"):
                d = measure(g.answer, p.lang, level)
                acc[f"ttr_{level}"].append(d.ttr)
                acc[f"mattr_{level}"].append(d.mattr)
                acc[f"mtld_{level}"].append(d.mtld)
    return {m: {lang: {k: summarize(v) for k, v in per[(m, lang)].items()}
                for lang in ("zh", "en", "all") if (m, lang) in per} for m in models}


def contamination(prompts: dict[str, EvalPrompt], gens: list[Generation], models: list[str]
                  ) -> dict[str, Any]:
    """Share of answers not written in the prompt's language, per model and prompt language."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for m in models:
        for lang in ("zh", "en"):
            mine = [g for g in gens if g.model == m and (p := prompts.get(g.prompt_id))
                    and p.lang == lang]
            if mine:
                wrong = sum(1 for g in mine if detect_language(g.answer) not in (lang, None))
                out.setdefault(m, {})[lang] = {"n": len(mine), "wrong_language": wrong,
                                               "rate": wrong / len(mine)}
    return out


def agreement(a: list[st.Outcome], b: list[st.Outcome]) -> dict[str, Any] | None:
    """Agreement between two sources on the same (prompt, pair) decisions."""
    def label(s: float) -> str:
        return "a" if s > 0.5 else "b" if s < 0.5 else "tie"

    def index(outs: list[st.Outcome]) -> dict[tuple[str, str, str], list[float]]:
        d: dict[tuple[str, str, str], list[float]] = defaultdict(list)
        for o in outs:
            x, y = sorted((o.a, o.b))
            d[(o.prompt_id, x, y)].append(o.score if o.a == x else 1 - o.score)
        return d

    ia, ib = index(a), index(b)
    common = sorted(set(ia) & set(ib))
    if not common:
        return None
    la = [label(float(np.mean(ia[k]))) for k in common]
    lb = [label(float(np.mean(ib[k]))) for k in common]
    return {"n": len(common), "percent_agreement": sum(x == y for x, y in zip(la, lb, strict=True))
            / len(common), "cohen_kappa": cohen_kappa(la, lb)}


def analyze(store: Store, *, source: str = "judge", judge: str | None = None,
            models: list[str] | None = None, rounds: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Everything the report shows, as plain JSON-ready data."""
    prompts = {p.id: p for p in store.eval_prompts()}
    gens_list = store.generations()
    gens = {(g.model, g.prompt_id): g for g in gens_list}
    judgments = store.judgments(source=source, judge=judge)
    pairs, consistency = pair_outcomes(judgments)
    outcomes = pairs + rank_outcomes(judgments)
    if not outcomes:
        raise ValueError(f"no {source} verdicts in the store"
                         + (f" from judge {judge!r}" if judge else ""))
    t = st.ScoreTensor.build(outcomes, models)
    result: dict[str, Any] = {
        "source": source, "judges": sorted({j.judge for j in judgments}),
        "templates": sorted({j.template_hash for j in judgments if j.template_hash}),
        "bootstrap_rounds": rounds, "pair_consistency": consistency,
        "overall": matrix_section(t, _lengths(t, gens), rounds, seed)}
    by_lang = {}
    for lang in ("zh", "en"):
        sub = t.subset(pid for pid in t.prompts if pid in prompts and prompts[pid].lang == lang)
        if sub.prompts:
            by_lang[lang] = matrix_section(sub, _lengths(sub, gens), rounds, seed)
    result["by_language"] = by_lang
    if "zh" in by_lang and "en" in by_lang:
        result["cross_lingual_gap"] = by_lang["zh"]["win_rate"] - by_lang["en"]["win_rate"]
    genres: dict[str, list[str]] = defaultdict(list)
    for pid in t.prompts:
        if pid in prompts:
            genres[prompts[pid].genre or prompts[pid].category or "(none)"].append(pid)
    result["by_genre"] = {g: {"n_prompts": len(ids), "win_rate": st.win_rates(t.subset(ids))}
                          for g, ids in sorted(genres.items())}
    result["contamination"] = contamination(prompts, gens_list, t.models)
    div = diversity_table(prompts, gens_list, t.models)
    result["diversity"] = div
    corr = {}
    for lang, sec in [("all", result["overall"]), *by_lang.items()]:
        for metric in ("ttr_word", "mattr_word", "mtld_word", "ttr_char"):
            xs = [div[m][lang][metric]["mean"] for m in t.models if lang in div.get(m, {})]
            ys = [w for m, w in zip(t.models, sec["mean_win_rate"], strict=True)
                  if lang in div.get(m, {})]
            if len(xs) >= 3 and not any(math.isnan(v) for v in xs + ys):
                c = st.correlation(xs, ys)
                corr[f"{lang}:{metric}"] = c.__dict__
    result["diversity_vs_win_rate"] = corr
    if source != "human":
        humans = store.judgments(source="human")
        human_out = pair_outcomes(humans)[0] + rank_outcomes(humans)
        result["judge_vs_human"] = agreement(outcomes, human_out) if human_out else None
    result["reference_paper"] = reference_paper()
    return _clean(result)
