"""The judge modes, declared once: one `JudgeMode` object per mode (pairwise, ranking, rubric),
each with its template, JSON Schema, how it plans tasks for a prompt, renders a task, parses
the answer, turns it into a record, and aggregates records into outcomes. The `Judge` runs any
of them without knowing which (AlpacaEval: a judge is its config and template).
"""

from __future__ import annotations

import itertools
import random
import re
import string
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, field_validator

from ..records import Criterion, EvalPrompt, Judgment, RubricScore
from ..store import Store
from .stats import Outcome, outcomes_from_ranking

DIMENSIONS = ("content_quality", "creative_merit", "cultural_appropriateness", "task_fulfilment",
              "overall")
VERDICTS = ("A>>B", "A>B", "A=B", "B>A", "B>>A")
_TIE = {"tie", "equal", "draw", "平局", "相同", "一样", "none", "a=b"}

RUBRIC_SCHEMA = {"type": "object", "properties": {
    "reason": {"type": "string"}, "score": {"type": "integer", "minimum": 1, "maximum": 10}},
    "required": ["reason", "score"], "additionalProperties": False}
_V = {"type": "string", "enum": ["A", "B", "tie"]}
PAIR_SCHEMA = {"type": "object", "properties": {
    **{d: _V for d in DIMENSIONS}, "verdict": {"type": "string", "enum": list(VERDICTS)},
    "reason": {"type": "string"}}, "required": [*DIMENSIONS, "verdict", "reason"]}
RANK_SCHEMA = {"type": "object", "properties": {
    "ranking": {"type": "array", "items": {"type": "string"}}, "reason": {"type": "string"}},
    "required": ["ranking", "reason"]}


class JudgeTask(BaseModel):
    """One unit of judging work, small and serializable: pairwise (models in shown order A, B),
    ranking (models in shown order) or rubric (one model, one criterion)."""

    mode: str  # a key of MODES
    prompt_id: str
    models: list[str]
    criterion: int | None = None
    judge: str

    @field_validator("mode")
    @classmethod
    def _known(cls, v: str) -> str:
        judge_mode(v)
        return v

    @property
    def key(self) -> str:
        return MODES[self.mode].key(self)


def norm_verdict(value: Any) -> str | None:
    s = str(value or "").strip().strip("\"'“”[]").lower()
    if s in ("a", "answer a", "回答a", "回答 a"):
        return "A"
    if s in ("b", "answer b", "回答b", "回答 b"):
        return "B"
    return "tie" if s in _TIE else None


def norm_verdict5(value: Any) -> str | None:
    s = str(value or "").strip().strip("\"'“”[]").replace(" ", "").upper()
    return s if s in VERDICTS else None


def _label(item: Any, labels: str) -> str | None:
    """The answer label in a ranking entry: "B", "[B]", "回答B", "Answer B" -> "B"."""
    found = re.findall(r"(?<![A-Za-z])([A-Za-z])(?![A-Za-z])", str(item))
    hits = [f.upper() for f in found if f.upper() in labels]
    return hits[0] if hits else None


# -- parsers: raise ValueError for unusable answers, so the judge is asked again -------------
def parse_pair(obj: dict[str, Any]) -> tuple[dict[str, str], str, str]:
    """(dimension -> A/B/tie, five-level verdict, reason); `overall` is required."""
    dims = {d: v for d in DIMENSIONS if (v := norm_verdict(obj.get(d)))}
    v5 = norm_verdict5(obj.get("verdict"))
    if "overall" not in dims and v5:
        dims["overall"] = "A" if v5.startswith("A>") else "B" if v5.startswith("B>") else "tie"
    if "overall" not in dims:
        raise ValueError('the answer has no usable "overall" verdict: give "overall" as '
                         '"A", "B" or "tie"')
    slight = {"A": "A>B", "B": "B>A", "tie": "A=B"}[dims["overall"]]
    if v5 is None or v5 not in (slight, slight.replace(">", ">>")):  # absent or contradicting
        v5 = slight
    return dims, v5, str(obj.get("reason", ""))


def parse_rubric(obj: dict[str, Any]) -> tuple[float, str]:
    """(score 1-10, reason); `score` is required."""
    raw = obj.get("score")
    try:
        score = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f'the answer has no usable "score" (got {raw!r}): give "score" as an '
                         "integer from 1 to 10") from None
    if not 1 <= score <= 10:
        raise ValueError(f'"score" must be from 1 to 10, got {raw!r}')
    return score, str(obj.get("reason", ""))


def parse_rank(obj: dict[str, Any], labels: str) -> tuple[list[str], str]:
    ranked = obj.get("ranking")
    if not isinstance(ranked, list):  # small judges rename the key
        ranked = next((v for v in obj.values() if isinstance(v, list)), [])
    seen = [lab for lab in dict.fromkeys(_label(x, labels) for x in ranked) if lab]
    if len(seen) < len(labels) - 1:
        raise ValueError(f'"ranking" must list every answer label ({", ".join(labels)}); '
                         f"got {ranked!r}")
    return seen + [lab for lab in labels if lab not in seen], str(obj.get("reason", ""))


def bands_text(c: Criterion) -> str:
    return "\n".join(f"- {k}: {v}" for k, v in c.bands.items()) or "-"


Record = Judgment | RubricScore


class JudgeMode:
    """What varies between modes; subclasses fill in each part."""

    name: str
    template: str
    schema: dict[str, Any]
    typical_output: int  # tokens a verdict usually takes (`eval estimate`)

    def plan(self, prompt: EvalPrompt, models: list[str], judge: str, seed: int
             ) -> list[JudgeTask]:
        """Every task of this mode for one prompt and the models that answered it."""
        raise NotImplementedError

    def variables(self, task: JudgeTask, prompt: EvalPrompt, answers: list[str]
                  ) -> dict[str, Any]:
        """The template's variables for a task (`answers` in the task's model order)."""
        raise NotImplementedError

    def parse(self, obj: dict[str, Any], task: JudgeTask) -> Any:
        raise NotImplementedError

    def record(self, task: JudgeTask, prompt: EvalPrompt, value: Any, judge: str,
               keys: list[str], template_hash: str) -> Record:
        raise NotImplementedError

    def key(self, task: JudgeTask) -> str:
        kind = "pair" if self.name == "pairwise" else "rank"
        models = task.models if self.name == "pairwise" else sorted(task.models)
        return f"{kind}|judge|{task.judge}|{task.prompt_id}|{'>'.join(models)}"

    def is_done(self, store: Store, key: str) -> bool:
        return store.evaluation.has_judgment(key)

    def save(self, store: Store, record: Record) -> None:
        store.evaluation.put_judgment(record)  # type: ignore[arg-type]


class Pairwise(JudgeMode):
    """Two answers in both orders; per dimension A/B/tie and a five-level verdict."""

    name, template, schema, typical_output = "pairwise", "judge_pairwise", PAIR_SCHEMA, 90

    def plan(self, prompt, models, judge, seed):
        out = []
        for a, b in itertools.combinations(models, 2):
            out += [JudgeTask(mode="pairwise", prompt_id=prompt.id, models=[a, b], judge=judge),
                    JudgeTask(mode="pairwise", prompt_id=prompt.id, models=[b, a], judge=judge)]
        return out

    def variables(self, task, prompt, answers):
        return {"prompt": prompt.prompt, "answer_a": answers[0], "answer_b": answers[1]}

    def parse(self, obj, task):
        return parse_pair(obj)

    def record(self, task, prompt, value, judge, keys, template_hash):
        dims, v5, reason = value
        a, b = task.models
        label = {"A": a, "B": b, "tie": "tie"}
        return Judgment(prompt_id=prompt.id, kind="pair", models=[a, b], judge=judge,
                        winner=label[dims["overall"]],
                        dimensions={d: label[v] for d, v in dims.items()},
                        cache_keys=keys, template_hash=template_hash, reason=reason, verdict=v5)


class Ranking(JudgeMode):
    """K answers under letters in a per-prompt random order, ranked best first."""

    name, template, schema, typical_output = "ranking", "judge_ranking", RANK_SCHEMA, 60

    def plan(self, prompt, models, judge, seed):
        if len(models) < 2:
            return []
        order = sorted(models)
        random.Random(f"{seed}:{prompt.id}").shuffle(order)
        return [JudgeTask(mode="ranking", prompt_id=prompt.id, models=order, judge=judge)]

    def variables(self, task, prompt, answers):
        labels = string.ascii_uppercase[: len(answers)]
        shown = "\n\n".join(f"[{lab}]\n<<<\n{a}\n>>>"
                            for lab, a in zip(labels, answers, strict=True))
        return {"prompt": prompt.prompt, "k": len(answers), "labels": ", ".join(labels),
                "answers": shown}

    def parse(self, obj, task):
        return parse_rank(obj, string.ascii_uppercase[: len(task.models)])

    def record(self, task, prompt, value, judge, keys, template_hash):
        seen, reason = value
        by_label = dict(zip(string.ascii_uppercase, task.models, strict=False))
        return Judgment(prompt_id=prompt.id, kind="rank", models=sorted(task.models), judge=judge,
                        ranks={by_label[lab]: float(r) for r, lab in enumerate(seen, 1)},
                        cache_keys=keys, template_hash=template_hash, reason=reason)


class Rubric(JudgeMode):
    """WritingBench: one answer, one criterion, a score 1-10 against the criterion's bands."""

    name, template, schema, typical_output = "rubric", "judge_rubric", RUBRIC_SCHEMA, 70

    def plan(self, prompt, models, judge, seed):
        return [JudgeTask(mode="rubric", prompt_id=prompt.id, models=[m], criterion=c, judge=judge)
                for m in models for c in range(len(prompt.criteria))]

    def variables(self, task, prompt, answers):
        c = prompt.criteria[task.criterion or 0]
        return {"prompt": prompt.prompt, "answer": answers[0], "criterion": c.name,
                "description": c.description, "bands": bands_text(c)}

    def parse(self, obj, task):
        return parse_rubric(obj)

    def record(self, task, prompt, value, judge, keys, template_hash):
        score, reason = value
        c = prompt.criteria[task.criterion or 0]
        return RubricScore(prompt_id=prompt.id, model=task.models[0],
                           criterion=task.criterion or 0, criterion_name=c.name, score=score,
                           reason=reason, judge=judge, template_hash=template_hash,
                           cache_keys=keys)

    def key(self, task):
        return f"rubric|{task.judge}|{task.prompt_id}|{task.models[0]}|{task.criterion}"

    def is_done(self, store, key):
        return store.evaluation.has_rubric_score(key)

    def save(self, store, record):
        store.evaluation.put_rubric_score(record)  # type: ignore[arg-type]


MODES: dict[str, JudgeMode] = {m.name: m for m in (Pairwise(), Ranking(), Rubric())}


def judge_mode(name: str) -> JudgeMode:
    if name not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {name!r}")
    return MODES[name]


# -- aggregation --------------------------------------------------------------------------------
def pair_outcomes(judgments: Iterable[Judgment]) -> tuple[list[Outcome], dict[str, int]]:
    """One outcome per prompt and model pair from pairwise verdicts in both orders: agreeing
    verdicts count, disagreeing ones are a tie; a pair judged in one order only counts as is.
    Returns the outcomes and counts of consistent / inconsistent / single-order pairs."""
    groups: dict[tuple[str, str, str, str], list[str]] = defaultdict(list)
    for j in judgments:
        if j.kind != "pair" or j.winner is None:
            continue
        a, b = sorted(j.models)
        groups[(j.judge, j.prompt_id, a, b)].append(j.winner)
    outs, counts = [], {"consistent": 0, "inconsistent": 0, "single_order": 0}
    for (_, pid, a, b), winners in groups.items():
        score = [1.0 if w == a else 0.0 if w == b else 0.5 for w in winners]
        if len(score) == 1:
            counts["single_order"] += 1
            s = score[0]
        elif len(set(score)) == 1:
            counts["consistent"] += 1
            s = score[0]
        else:
            counts["inconsistent"] += 1
            s = 0.5
        outs.append(Outcome(pid, a, b, s))
    return outs, counts


def rank_outcomes(judgments: Iterable[Judgment]) -> list[Outcome]:
    out = []
    for j in judgments:
        if j.kind == "rank" and j.ranks:
            out += outcomes_from_ranking(j.prompt_id, j.ranks)
    return out
