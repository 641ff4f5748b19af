"""Preference pairs out of the store, for DPO and reward models.

Three sources, each pair with its provenance:
  refinement  the round that passed over an earlier round of the same item that failed (the
              failing reasons rebuilt from the stored stage results), margin = score-sum gap;
  review      a reviewer's edit over the version it changed, and the finally accepted version
              over one a reviewer rejected or sent back (margin: none, a human decided);
  judgment    the winner over the loser of a pairwise eval judgment, only when both shown
              orders agree (margin: the weaker verdict's strength, 1 = A>B, 2 = A>>B).
Rows are TRL's conversational preference format (`prompt`, `chosen`, `rejected`) or its
reward-model format (`chosen` and `rejected` conversations with a `margin`).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..records import Triplet

SOURCES = ("refinement", "review", "judgment")
FORMATS = ("dpo", "reward")
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")


@dataclass
class PreferencePair:
    """One preference: the same prompt, a better and a worse (reasoning, text)."""

    id: str
    source: str
    prompt: str
    chosen_text: str
    rejected_text: str
    chosen_reasoning: str = ""
    rejected_reasoning: str = ""
    margin: float | None = None
    provenance: dict[str, Any] = field(default_factory=dict)


# -- refinement rounds --------------------------------------------------------------------------
def refinement_pairs(store: Any) -> Iterator[PreferencePair]:
    """Per item and block of rounds (construction, then each reviewer refinement): the last
    round, when it has no problem, over every earlier round of the block that had some."""
    from ..construct.config import ConstructConfig
    from ..construct.pipeline import judge_attempt
    from ..review.refine import ROUND_STRIDE

    configs: dict[str | None, ConstructConfig] = {}
    for t in store.construct.iter_triplets(None):
        by_round: dict[int, dict[str, Any]] = defaultdict(dict)
        for s in store.construct.stages_for(t.source_id or t.id):
            by_round[s.round][s.stage] = s
        kept = {r["round"]: json.loads(r["before"]).get("query", "")
                for r in store.review.refinements(t.id)}
        blocks: dict[int, list[Any]] = defaultdict(list)
        for rnd in sorted(by_round):
            st = by_round[rnd]
            p, r, v, s = (st.get(k) for k in ("reconstruct_prompt", "reasoning", "validate",
                                               "score"))
            if r is None or not r.ok or v is None or s is None:
                continue  # an unusable round is no attempt to compare
            run = r.run_id
            if run not in configs:
                got = store.runs.run_config(run) if run else None
                configs[run] = ConstructConfig.model_validate((got or {}).get("config", {}))
            cfg = configs[run]
            prompt = p.output["prompt"] if p is not None and p.ok else kept.get(
                rnd // ROUND_STRIDE, t.query)
            blocks[rnd // ROUND_STRIDE].append(judge_attempt(
                cfg, rnd, prompt, r.output["reasoning"], t.answer[:cfg.max_article_chars], v, s))
        for block, attempts in sorted(blocks.items()):
            best = attempts[-1]
            if best.problems:
                continue
            for bad in attempts[:-1]:
                if not bad.problems:
                    continue
                margin = (best.scores.total - bad.scores.total
                          if best.scores and bad.scores else None)
                yield PreferencePair(
                    f"refinement:{t.id}:{best.round}>{bad.round}", "refinement", best.prompt,
                    t.answer, t.answer, best.reasoning, bad.reasoning, margin,
                    {"item_id": t.id, "block": "construction" if block == 0 else
                     f"review refinement {block}", "chosen_round": best.round,
                     "rejected_round": bad.round, "rejected_prompt": bad.prompt,
                     "rejected_reasons": bad.problems,
                     "chosen_score_sum": best.scores.total if best.scores else None,
                     "rejected_score_sum": bad.scores.total if bad.scores else None})


# -- review -------------------------------------------------------------------------------------
def unpatch(new: str, diff: str) -> str:
    """The old text of one field from its new text and the unified diff that led to it."""
    lines, out, pos = new.splitlines(), [], 0
    body = diff.splitlines()
    i = 0
    while i < len(body):
        m = _HUNK.match(body[i])
        i += 1
        if not m:
            continue
        start, count = int(m.group(1)), int(m.group(2) or 1)
        upto = start - 1 if count else start
        out += lines[pos:upto]
        pos = upto
        while i < len(body) and body[i][:1] in (" ", "-", "+") and not body[i].startswith(
                ("--- ", "+++ ")):
            tag, text = body[i][0], body[i][1:]
            if tag != "+":
                out.append(text)
            if tag != "-":
                pos += 1
            i += 1
    return "\n".join(out + lines[pos:])


def _field_diffs(diff: str) -> dict[str, str]:
    """A version's diff split per field (each part starts with `--- <field>@...`)."""
    parts: dict[str, list[str]] = defaultdict(list)
    name = None
    for line in diff.splitlines():
        if line.startswith("--- ") and "@" in line:
            name = line[4:].split("@")[0]
        if name:
            parts[name].append(line)
    return {k: "\n".join(v) for k, v in parts.items()}


def version_triplet(store: Any, item_id: str, version: int) -> Triplet | None:
    """The item as it was at `version`; version 0 (never stored) is rebuilt from a
    refinement's snapshot or by undoing version 1's diff."""
    if version > 0:
        return store.review.version_data(item_id, version)
    for ref in store.review.refinements(item_id):
        if ref["from_version"] == 0:
            return Triplet.model_validate_json(ref["before"])
    v1 = store.review.version_data(item_id, 1)
    rows = store.review.versions(item_id)
    if v1 is None or not rows:
        return store.construct.get_triplet(item_id)
    old = v1.model_copy(deep=True)
    for f, d in _field_diffs(rows[0]["diff"]).items():
        if f in ("query", "thought", "answer"):
            setattr(old, f, unpatch(getattr(v1, f), d))
    return old


def review_pairs(store: Any) -> Iterator[PreferencePair]:
    """Reviewer edits (edited over original) and rejections or send-backs followed by an
    accepted later version (accepted over rejected)."""
    seen: set[tuple[str, int, int]] = set()
    for t in store.construct.iter_triplets(None):
        rows = store.review.versions(t.id)
        reviews = store.review.reviews(t.id)
        for row in rows:
            if row["editor"].startswith("model:"):
                continue
            new, old = (store.review.version_data(t.id, row["version"]),
                        version_triplet(store, t.id, row["version"] - 1))
            if new is None or old is None:
                continue
            why = next((r["reason"] for r in reviews if r["decision"] == "edit"
                        and r["version"] == row["version"]), "")
            seen.add((t.id, row["version"], row["version"] - 1))
            yield _pair("review_edit", new, old, row["version"], row["version"] - 1,
                        {"editor": row["editor"], "reason": why})
        current = rows[-1]["version"] if rows else 0
        if t.review_status != "accepted" or not rows:
            continue
        for r in reviews:
            if r["decision"] in ("reject", "send_back") and r["version"] < current and (
                    t.id, current, r["version"]) not in seen:
                old = version_triplet(store, t.id, r["version"])
                if old is not None:
                    seen.add((t.id, current, r["version"]))
                    yield _pair(f"review_{r['decision']}", t, old, current, r["version"],
                                {"reviewer": r["reviewer"], "reason": r["reason"]})


def _pair(kind: str, new: Triplet, old: Triplet, v_new: int, v_old: int,
          extra: dict[str, Any]) -> PreferencePair:
    return PreferencePair(
        f"review:{new.id}:v{v_new}>v{v_old}", "review", new.query, new.answer, old.answer,
        new.thought, old.thought, None,
        {"item_id": new.id, "kind": kind, "chosen_version": v_new, "rejected_version": v_old,
         "rejected_prompt": old.query, **extra})


# -- judgments ----------------------------------------------------------------------------------
def _strength(verdict: str | None) -> int:
    return 2 if verdict and ">>" in verdict else 1


def judgment_pairs(store: Any) -> Iterator[PreferencePair]:
    """Winner over loser where a judge saw both orders and picked the same model twice."""
    groups: dict[tuple[str, str, str, frozenset[str]], list[Any]] = defaultdict(list)
    for j in store.evaluation.judgments():
        if j.kind == "pair" and len(j.models) == 2:
            groups[(j.source, j.judge, j.prompt_id, frozenset(j.models))].append(j)
    for (src, judge, pid, _), js in sorted(groups.items(), key=lambda kv: sorted(kv[0][3])):
        orders = {tuple(j.models): j for j in js}
        if len(orders) < 2:
            continue
        winners = {j.winner for j in orders.values()}
        if len(winners) != 1 or winners == {"tie"} or None in winners:
            continue
        win = winners.pop()
        lose = next(m for m in js[0].models if m != win)
        prompt = store.evaluation.get_eval_prompt(pid)
        gw, gl = store.evaluation.generations(win, pid), store.evaluation.generations(lose, pid)
        if prompt is None or not gw or not gl:
            continue
        margin = min(_strength(j.verdict) for j in orders.values())
        yield PreferencePair(
            f"judgment:{judge}:{pid}:{win}>{lose}", "judgment", prompt.prompt, gw[0].answer,
            gl[0].answer, gw[0].thinking, gl[0].thinking, float(margin),
            {"prompt_id": pid, "set_name": prompt.set_name, "judge": judge, "judged_by": src,
             "chosen_model": win, "rejected_model": lose,
             "verdicts": [j.verdict for j in orders.values()],
             "reasons": [j.reason for j in orders.values()]})


# -- rows and export ----------------------------------------------------------------------------
def completion(reasoning: str, text: str, with_reasoning: bool) -> str:
    """The assistant turn: the reasoning in the think slot (when asked and present), then text."""
    return f"<think>\n{reasoning}\n</think>\n\n{text}" if with_reasoning and reasoning else text


def pair_row(p: PreferencePair, fmt: str = "dpo", reasoning: str = "think") -> dict[str, Any]:
    think = reasoning == "think"
    user = [{"role": "user", "content": p.prompt}]
    chosen = [{"role": "assistant", "content": completion(p.chosen_reasoning, p.chosen_text,
                                                          think)}]
    rejected = [{"role": "assistant", "content": completion(p.rejected_reasoning,
                                                            p.rejected_text, think)}]
    meta = {"id": p.id, "source": p.source, "margin": p.margin,
            "provenance": json.dumps(p.provenance, ensure_ascii=False)}
    if fmt == "dpo":
        return {**meta, "prompt": user, "chosen": chosen, "rejected": rejected}
    return {**meta, "chosen": user + chosen, "rejected": user + rejected}


@dataclass
class PreferenceReport:
    written: int
    by_source: dict[str, int]
    skipped: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def collect(store: Any, sources: Sequence[str] = SOURCES, min_margin: float | None = None,
            reasoning: str = "think") -> tuple[list[PreferencePair], Counter[str]]:
    """Pairs of the chosen sources; drops those under `min_margin` (pairs without a numeric
    margin, i.e. human review, always pass) and those whose two completions are identical."""
    makers = {"refinement": refinement_pairs, "review": review_pairs,
              "judgment": judgment_pairs}
    bad = [s for s in sources if s not in makers]
    if bad:
        raise ValueError(f"unknown preference sources {bad}; choose from {list(SOURCES)}")
    out, skipped = [], Counter()
    for name in sources:
        for p in makers[name](store):
            if min_margin is not None and p.margin is not None and p.margin < min_margin:
                skipped["below min margin"] += 1
            elif (completion(p.chosen_reasoning, p.chosen_text, reasoning == "think")
                  == completion(p.rejected_reasoning, p.rejected_text, reasoning == "think")):
                skipped["identical completions"] += 1
            else:
                out.append(p)
    return out, skipped


def export_preferences(store: Any, out: Path, fmt: str = "dpo", reasoning: str = "think",
                       sources: Sequence[str] = SOURCES, min_margin: float | None = None
                       ) -> PreferenceReport:
    """Write the pairs as .jsonl or .parquet (atomically); `datasets` loads either."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    if reasoning not in ("think", "drop"):
        raise ValueError(f"reasoning must be think or drop, got {reasoning!r}")
    if out.suffix not in (".jsonl", ".parquet"):
        raise ValueError(f"{out}: choose a .jsonl or .parquet file name")
    pairs, skipped = collect(store, sources, min_margin, reasoning)
    rows = [pair_row(p, fmt, reasoning) for p in pairs]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    if out.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), tmp)
    else:
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                       encoding="utf-8")
    tmp.replace(out)
    return PreferenceReport(len(rows), dict(Counter(p.source for p in pairs)), dict(skipped))
