"""Assemble every evaluation statistic from the store into one JSON-ready result."""

from __future__ import annotations

import json
import math
import warnings
from collections import defaultdict
from importlib import resources
from typing import Any

import numpy as np

from ..langid import detect_language
from ..records import EvalPrompt, Generation
from ..store import Store
from . import stats as st
from .arena import arena_scores
from .benchmarks import REFERENCES
from .bias import agreement as bias_agreement
from .bias import length_bias, position_bias, rubric_outcomes
from .checks import build_warnings
from .diversity import measure, summarize
from .ensemble import inter_judge_agreement, per_judge
from .judge import pair_outcomes, rank_outcomes
from .rubric import rubric_section


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
    if isinstance(x, (np.floating, float)):  # full precision: p-values can be 1e-12
        return None if math.isnan(float(x)) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


def matrix_section(t: st.ScoreTensor, lengths: np.ndarray | None, rounds: int, seed: int
                   ) -> dict[str, Any]:
    M = st.win_rates(t)
    lo, hi = st.bootstrap_ci(t, rounds=rounds, seed=seed)
    wins, losses, p = st.sign_test(t)
    bt = st.bradley_terry(t)
    bt_lo, bt_hi = st.bradley_terry_ci(t, rounds=rounds, seed=seed)
    groups = st.connected(t)
    out = {"models": t.models, "connected_groups": groups if len(groups) > 1 else [],
           "n_prompts": len(t.prompts), "win_rate": M, "ci_low": lo,
           "ci_high": hi, "wins": wins, "losses": losses, "sign_test_p": p,
           "bradley_terry": bt, "bt_ci_low": bt_lo, "bt_ci_high": bt_hi,
           "mean_win_rate": np.nanmean(np.where(np.eye(len(t.models)) == 1, np.nan, M), axis=1)
           if len(t.models) > 1 else np.array([np.nan])}
    if lengths is not None:
        out["length_controlled"] = st.length_controlled(t, lengths)
    return out


def _lengths(t: st.ScoreTensor, gens: dict[tuple[str, str], Generation],
             prompts: dict[str, EvalPrompt]) -> np.ndarray:
    """Answer lengths relative to the mean answer length in the prompt's language, so that
    length control is fitted per language (Chinese characters and English letters differ)."""
    raw = {k: len(g.answer) for k, g in gens.items()}
    lang_mean: dict[str, float] = {}
    for lang in ("zh", "en"):
        v = [n for (_, pid), n in raw.items() if pid in prompts and prompts[pid].lang == lang]
        lang_mean[lang] = float(np.mean(v)) if v and np.mean(v) > 0 else 1.0

    def rel(m: str, p: str) -> float:
        if (m, p) not in raw:
            return np.nan
        return raw[(m, p)] / lang_mean.get(prompts[p].lang if p in prompts else "", 1.0)

    return np.array([[rel(m, p) for m in t.models] for p in t.prompts],
                    dtype=float).reshape(len(t.prompts), len(t.models))


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


def generation_integrity(gens: list[Generation], models: list[str]) -> dict[str, Any]:
    """Per model: answers, answers still cut at max_tokens after the retry (judged as they are,
    but counted here), answers with thinking split off, and completion tokens when known."""
    out = {}
    for m in models:
        mine = [g for g in gens if g.model == m]
        toks = [int((g.usage or {}).get("completion_tokens") or 0) for g in mine if g.usage]
        out[m] = {"n": len(mine), "truncated": sum(g.truncated for g in mine),
                  "with_thinking": sum(bool(g.thinking) for g in mine),
                  "completion_tokens": sum(toks) if toks else None}
    return out


def model_order(store: Store, models: list[str] | None) -> list[str]:
    """The user's order: as given, else the order in which models first answered."""
    if models:
        return list(models)
    return list(dict.fromkeys(g.model for g in store.evaluation.generations()))


def analyze(store: Store, *, source: str = "judge", judge: str | None = None,
            models: list[str] | None = None, rounds: int = 1000, seed: int = 0,
            baseline: str | None = None) -> dict[str, Any]:
    """Everything the report shows, as plain JSON-ready data (full precision)."""
    prompts = {p.id: p for p in store.evaluation.eval_prompts()}
    gens_list = store.evaluation.generations()
    if not prompts:
        raise ValueError("the store has no evaluation prompts: add some with "
                         "`coig-writer eval prompts` (e.g. `eval prompts writingbench`)")
    if not gens_list:
        raise ValueError("the store has no answers: run `coig-writer eval generate` or "
                         "`coig-writer eval import-generations` first")
    order = model_order(store, models)
    gens = {(g.model, g.prompt_id): g for g in gens_list}
    judgments = store.evaluation.judgments(source=source, judge=judge)
    pairs, consistency = pair_outcomes(judgments)
    outcomes = pairs + rank_outcomes(judgments)
    rubric = store.evaluation.rubric_scores(judge=judge) if source == "judge" else []
    if not outcomes and not rubric:
        raise ValueError(f"no {source} verdicts or rubric scores in the store"
                         + (f" from judge {judge!r}" if judge else "")
                         + ": run `coig-writer eval judge` (or `eval import-human`) first")
    result: dict[str, Any] = {
        "source": source, "bootstrap_rounds": rounds, "models_order": order,
        "judges": sorted({j.judge for j in judgments} | {r.judge for r in rubric}),
        "templates": sorted({j.template_hash for j in judgments if j.template_hash}),
        "pair_consistency": consistency, "warnings": []}
    if rubric:
        result["rubric"] = rubric_section(rubric, prompts, order, rounds, seed, set(gens))
    if outcomes:
        _pairwise(result, outcomes, order, prompts, gens, gens_list, rounds, seed)
        pair_j = [j for j in judgments if j.kind == "pair"]
        result["bias"] = {
            "position": position_bias(pair_j),
            "length": length_bias(pairs or outcomes, gens)}
        if rubric:
            result["bias"]["pairwise_vs_rubric"] = bias_agreement(
                pairs or outcomes, rubric_outcomes(rubric), rounds, seed)
        if baseline:
            result["arena"] = arena_scores(pair_j, result["overall"]["models"], baseline,
                                           rounds, seed)
    result["judges_detail"] = per_judge(judgments, rubric, order, gens, baseline, rounds, seed)
    if len(result["judges_detail"]) > 1:
        result["judge_agreement"] = inter_judge_agreement(judgments, rubric, rounds, seed)
        if result.get("arena"):
            result["arena"]["by_judge"] = {j: d["arena"] for j, d in
                                           result["judges_detail"].items() if "arena" in d}
    if source != "human":
        humans = store.evaluation.judgments(source="human")
        human_out = pair_outcomes(humans)[0] + rank_outcomes(humans)
        if human_out:
            result["judge_vs_human"] = bias_agreement(outcomes, human_out, rounds, seed) \
                if outcomes else None
            if rubric:
                result["rubric_vs_human"] = bias_agreement(rubric_outcomes(rubric), human_out,
                                                           rounds, seed)
    result["reference_paper"] = reference_paper()
    sets = {p.set_name for p in prompts.values()}
    result["reference_benchmarks"] = {k: v for k, v in REFERENCES.items() if k in sets}
    result = _clean(result)
    result["warnings"], result["informative"] = build_warnings(result)
    return result


def _pairwise(result: dict[str, Any], outcomes: list[st.Outcome], order: list[str],
              prompts: dict[str, EvalPrompt], gens: dict[tuple[str, str], Generation],
              gens_list: list[Generation], rounds: int, seed: int) -> None:
    seen = {m for o in outcomes for m in (o.a, o.b)}
    t = st.ScoreTensor.build(outcomes, [m for m in order if m in seen]
                             + sorted(seen - set(order)))
    result["overall"] = matrix_section(t, _lengths(t, gens, prompts), rounds, seed)
    by_lang = {}
    for lang in ("zh", "en"):
        sub = t.subset(pid for pid in t.prompts if pid in prompts and prompts[pid].lang == lang)
        if sub.prompts:
            by_lang[lang] = matrix_section(sub, _lengths(sub, gens, prompts), rounds, seed)
    result["by_language"] = by_lang
    if "zh" in by_lang and "en" in by_lang:
        result["cross_lingual_gap"] = by_lang["zh"]["win_rate"] - by_lang["en"]["win_rate"]
    genres: dict[str, list[str]] = defaultdict(list)
    for pid in t.prompts:
        if pid in prompts:
            genres[prompts[pid].genre or prompts[pid].category or "(none)"].append(pid)
    K = len(t.models)
    off = np.where(np.eye(K) == 1, np.nan, 0.0)
    by_genre = {}
    for g, ids in sorted(genres.items()):
        M = st.win_rates(t.subset(ids))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(M + off, axis=1) if K > 1 else np.array([np.nan])
        by_genre[g] = {"n_prompts": len(ids), "models": t.models, "win_rate": M,
                       "mean_win_rate": mean}
    result["by_genre"] = by_genre
    result["contamination"] = contamination(prompts, gens_list, t.models)
    result["generations"] = generation_integrity(gens_list, t.models)
    div = diversity_table(prompts, gens_list, t.models)
    result["diversity"] = div
    corr = {}
    for lang, sec in [("all", result["overall"]), *by_lang.items()]:
        for metric in ("ttr_word", "mattr_word", "mtld_word", "ttr_char"):
            xs = [div[m][lang][metric]["mean"] for m in t.models if lang in div.get(m, {})]
            ys = [w for m, w in zip(t.models, sec["mean_win_rate"], strict=True)
                  if lang in div.get(m, {})]
            if (len(xs) >= 3 and not any(math.isnan(v) for v in xs + ys)
                    and np.ptp(xs) > 0 and np.ptp(ys) > 0):  # constant: undefined
                try:
                    corr[f"{lang}:{metric}"] = st.correlation(xs, ys).__dict__
                except ValueError:
                    continue
    result["diversity_vs_win_rate"] = corr
