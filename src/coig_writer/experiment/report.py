"""The experiment report: the full evaluation report (evaluate/report) of the current models
under their plain names, headed by the paper's layout (Table 2 win rates vs the reference in
zh and en with CIs and sign-test p, the cross-lingual gap, TTR/MATTR, language contamination)
beside the paper's published numbers, with the judge named."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from ..evaluate.stats import format_p
from .graph import Step
from .steps import Context, StepError, file_digest


def _rename_judgment(j: Any, names: dict[str, str], judge: str) -> Any:
    return j.model_copy(update={
        "models": [names[m] for m in j.models], "judge": judge,
        "winner": names.get(j.winner, j.winner) if j.winner else j.winner,
        "dimensions": {k: names.get(v, v) for k, v in j.dimensions.items()},
        "ranks": {names[m]: r for m, r in j.ranks.items()}})


def report_store(ctx: Context, up: dict[str, dict], path: Path) -> tuple[Any, list[str], str]:
    """A fresh store with only the current models' answers and verdicts, under plain names."""
    from ..store import Store

    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    names = {o["model"]: k.split(":", 1)[1] for k, o in up.items() if k.startswith("generate:")}
    judges = {o["judge"]: o["judge_model"] for k, o in up.items()
              if k.startswith(("judge:", "rank"))}
    shown = ", ".join(sorted({ctx.plan.judge.name or m for m in judges.values()}))
    rs = Store(path)
    ids = next(o["ids"] for k, o in up.items() if k.startswith("generate:"))
    for i in ids:
        rs.evaluation.put_eval_prompt(ctx.store.evaluation.get_eval_prompt(i))
    for v, plain in names.items():
        for g in ctx.store.evaluation.generations(v):
            if g.prompt_id in set(ids):
                rs.evaluation.put_generation(g.model_copy(update={"model": plain}))
    for jn in judges:
        for j in ctx.store.evaluation.judgments(source="judge", judge=jn):
            if set(j.models) <= set(names) and j.prompt_id in set(ids):
                rs.evaluation.put_judgment(_rename_judgment(j, names, shown))
    return rs, list(names.values()), shown


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def paper_tables(result: dict[str, Any], ref: str, judge: str) -> dict[str, Any]:
    """Our numbers in the paper's layout, each row beside the published one."""
    paper = result["reference_paper"]
    by = result.get("by_language", {})
    rows = []
    models = (result.get("overall") or {}).get("models", [])
    for m in models:
        if m == ref:
            continue
        row: dict[str, Any] = {"model": m}
        for lang in ("zh", "en"):
            sec = by.get(lang)
            if sec and m in sec["models"] and ref in sec["models"]:
                i, j = sec["models"].index(m), sec["models"].index(ref)
                row[lang] = {"win_rate": sec["win_rate"][i][j], "ci": [sec["ci_low"][i][j],
                             sec["ci_high"][i][j]], "p": sec["sign_test_p"][i][j],
                             "n": sec["n_prompts"]}
            row[f"paper_{lang}"] = paper["win_rate_vs_G"][lang].get(m)
        zh, en = row.get("zh", {}).get("win_rate"), row.get("en", {}).get("win_rate")
        row["gap"] = zh - en if zh is not None and en is not None else None
        pz, pe = row["paper_zh"], row["paper_en"]
        row["paper_gap"] = pz - pe if pz is not None and pe is not None else None
        rows.append(row)
    div = {m: {lang: {k: d[k]["mean"] for k in ("ttr_word", "mattr_word", "ttr_char")}
               for lang, d in langs.items() if lang in ("zh", "en")}
           for m, langs in result.get("diversity", {}).items()}
    return {"reference": ref, "judge": judge, "table2": rows, "diversity": div,
            "contamination": result.get("contamination", {}),
            "paper": {k: paper[k] for k in ("source", "note", "ttr_mean_zh",
                                            "contamination_en_answered_in_zh", "prompts")}}


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def paper_html(t: dict[str, Any], plan_name: str) -> str:
    ref, paper = t["reference"], t["paper"]

    def cell(r: dict[str, Any], lang: str) -> list[str]:
        c = r.get(lang)
        if not c:
            return ["–", "–"]
        return [f"{_pct(c['win_rate'])} [{_pct(c['ci'][0])}, {_pct(c['ci'][1])}] (n={c['n']})",
                format_p(c["p"])]

    t2 = [[r["model"], *cell(r, "zh"), _pct(r["paper_zh"]), *cell(r, "en"),
           _pct(r["paper_en"]), _pct(r["gap"]), _pct(r["paper_gap"])] for r in t["table2"]]
    div = [[m, *(f"{d.get(lang, {}).get(k, float('nan')):.3f}" if lang in d else "–"
                 for lang in ("zh", "en") for k in ("ttr_word", "mattr_word")),
            paper["ttr_mean_zh"].get(m, "–")] for m, d in t["diversity"].items()]
    cont = [[m, _pct(c.get("en", {}).get("rate")), _pct(c.get("zh", {}).get("rate")),
             _pct(paper["contamination_en_answered_in_zh"].get(m))]
            for m, c in t["contamination"].items()]
    return "\n".join([
        f"<h1>Experiment {html.escape(plan_name)}: the paper's Table 2 layout</h1>",
        f"<p>Judge: <b>{html.escape(t['judge'])}</b> (LLM judge, pairwise, both orders; a "
        f"disagreement between orders is a tie). Paper: {html.escape(paper['source'])}; "
        f"{html.escape(paper['note'])} Paper prompts: "
        + ", ".join(f"{k} {v}" for k, v in paper["prompts"].items()) + ".</p>",
        f"<p><b>{t['failed_verdicts']} verdicts failed</b> (no parseable answer after retries) "
        "and are missing from these numbers.</p>" if t.get("failed_verdicts") else "",
        f"<h2>Win rate vs {html.escape(ref)} (%, 95% bootstrap CI, sign-test p)</h2>",
        _table(["model", "zh ours", "zh p", "zh paper", "en ours", "en p", "en paper",
                "gap zh−en ours", "gap paper"], t2),
        "<h2>Lexical diversity (mean per answer; word level)</h2>",
        _table(["model", "zh TTR", "zh MATTR", "en TTR", "en MATTR", "paper TTR zh"], div),
        "<h2>Language contamination (share of answers not in the prompt's language, %)</h2>",
        _table(["model", "en prompts", "zh prompts", "paper: en answered in zh"], cont),
        "<hr>"])


def run_report(ctx: Context, step: Step, up: dict[str, dict], in_hash: str
               ) -> tuple[dict, float | None]:
    from ..evaluate.analysis import analyze
    from ..evaluate.report import write_report

    out = ctx.folder / "report"
    out.mkdir(parents=True, exist_ok=True)
    rs, models, judge = report_store(ctx, up, out / "analysis.sqlite")
    ref = ctx.plan.judge.reference
    order = [m for m in step.config["order"] if m in models]
    try:
        with rs:
            result = analyze(rs, models=order, rounds=ctx.plan.report.rounds,
                             seed=ctx.plan.report.seed)
            lengths = {m: [len(g.answer) for g in rs.evaluation.generations(m)] for m in order}
    except ValueError as e:
        raise StepError(str(e)) from None
    files = write_report(result, lengths, out)
    tables = paper_tables(result, ref, judge)
    tables["failed_verdicts"] = sum(o.get("failed", 0) for k, o in up.items()
                                    if k.startswith(("judge:", "rank")))
    result["experiment"] = {"plan": ctx.plan.name, **tables,
                            "versions": {k: o.get("model") for k, o in up.items()}}
    files["json"].write_text(json.dumps(result, ensure_ascii=False, indent=2), "utf-8")
    page = files["html"].read_text("utf-8")
    page = page.replace("<body>", "<body>" + paper_html(tables, ctx.plan.name), 1)
    files["html"].write_text(page, "utf-8")
    if not tables["table2"]:
        raise StepError(f"no model was judged against the reference {ref}")
    return {"html": str(files["html"]), "json": str(files["json"]), "judge": judge,
            "models": (result.get("overall") or {}).get("models", []),
            "hash": file_digest(files["json"])}, None
