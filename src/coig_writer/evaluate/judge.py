"""LLM judging: pairwise in both orders (inconsistent verdicts are ties), K-way ranking, and
rubric scoring (WritingBench: one call per criterion, 1-10 against the criterion's bands).

Work is cut into small serializable `JudgeTask`s (`Judge.tasks`), each done by `Judge.do`
(which returns a record and writes nothing), so any executor can run them; `Judge.run` is a
bounded-concurrency gather that stores results. Judge prompts are versioned templates; every
verdict records the judge and template hash; calls go through the cache, so reruns only ask what
is missing. A JSON answer that lacks a required field (verdict, score) raises ValueError in the
parser, so the judge is asked again with the error shown.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import re
import string
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any, Literal

from pydantic import BaseModel

from ..llm import Backend, CachedBackend, ChatRequest, EndpointsDown, LLMError
from ..llm.policy import CompletionError, CompletionPolicy, complete_json
from ..prompts import load_template
from ..records import Criterion, EvalPrompt, Generation, Judgment, RubricScore
from ..store import Store
from .stats import Outcome, outcomes_from_ranking

DIMENSIONS = ("content_quality", "creative_merit", "cultural_appropriateness", "task_fulfilment",
              "overall")
MODES = ("pairwise", "ranking", "rubric")
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


def _build(messages: list[dict[str, str]], schema: dict[str, Any] | None, **params: Any
           ) -> ChatRequest:
    """A request constrained by a JSON Schema where the server supports one."""
    return ChatRequest.build(messages, json_schema=schema, **params)


class JudgeTask(BaseModel):
    """One unit of judging work, small and serializable: pairwise (models in shown order A, B),
    ranking (models in shown order) or rubric (one model, one criterion)."""

    mode: Literal["pairwise", "ranking", "rubric"]
    prompt_id: str
    models: list[str]
    criterion: int | None = None
    judge: str

    @property
    def key(self) -> str:
        if self.mode == "rubric":
            return f"rubric|{self.judge}|{self.prompt_id}|{self.models[0]}|{self.criterion}"
        kind, models = ("pair", self.models) if self.mode == "pairwise" else \
            ("rank", sorted(self.models))
        return f"{kind}|judge|{self.judge}|{self.prompt_id}|{'>'.join(models)}"


def bands_text(c: Criterion) -> str:
    return "\n".join(f"- {k}: {v}" for k, v in c.bands.items()) or "-"


class Judge:
    """Runs judgments with one judge model; `name` identifies it in records."""

    def __init__(self, store: Store, backend: Backend, name: str | None = None, *,
                 max_tokens: int = 300, max_answer_chars: int = 6000, concurrency: int = 4,
                 seed: int = 0, attempts: int = 3):
        self.store = store
        self.llm = backend if isinstance(backend, CachedBackend) else CachedBackend(backend, store)
        self.name = name or self.llm.model_id
        self.max_tokens = max_tokens
        self.max_answer_chars = max_answer_chars
        self.concurrency = max(1, concurrency)
        self.sem = asyncio.Semaphore(self.concurrency)
        self.seed = seed
        self.policy = CompletionPolicy(attempts=attempts)
        self.failures: dict[str, str] = {}
        self._prompts: dict[str, EvalPrompt] = {}

    def _cut(self, text: str) -> str:
        return text if len(text) <= self.max_answer_chars else text[: self.max_answer_chars] + " …"

    # -- planning -------------------------------------------------------------------------
    def tasks(self, prompts: list[EvalPrompt], models: list[str], mode: str = "pairwise",
              *, include_done: bool = False) -> list[JudgeTask]:
        """Every task of a run over the prompts that the models answered (rubric: each model's
        answer on each criterion; pairwise: each pair in both orders); done ones are left out
        unless `include_done`."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        have = {(g.model, g.prompt_id) for g in self.store.evaluation.generations()}
        out: list[JudgeTask] = []
        for p in prompts:
            self._prompts[p.id] = p
            mine = [m for m in models if (m, p.id) in have]
            if mode == "rubric":
                out += [JudgeTask(mode="rubric", prompt_id=p.id, models=[m], criterion=c,
                                  judge=self.name) for m in mine for c in range(len(p.criteria))]
            elif mode == "ranking" and len(mine) >= 2:
                order = sorted(mine)
                random.Random(f"{self.seed}:{p.id}").shuffle(order)
                out.append(JudgeTask(mode="ranking", prompt_id=p.id, models=order,
                                     judge=self.name))
            elif mode == "pairwise":
                for a, b in itertools.combinations(mine, 2):
                    out += [JudgeTask(mode="pairwise", prompt_id=p.id, models=[a, b],
                                      judge=self.name),
                            JudgeTask(mode="pairwise", prompt_id=p.id, models=[b, a],
                                      judge=self.name)]
        if include_done:
            return out
        ev = self.store.evaluation
        done = ev.has_rubric_score if mode == "rubric" else ev.has_judgment
        return [t for t in out if not done(t.key)]

    def planned(self, prompts: list[EvalPrompt], models: list[str], mode: str) -> int:
        return len(self.tasks(prompts, models, mode))

    def requests(self, task: JudgeTask) -> tuple[ChatRequest, str]:
        """The first request of a task and the template hash (also used by `estimate`)."""
        p = self._prompt(task.prompt_id)
        gens = [self._gen(m, p.id) for m in task.models]
        if task.mode == "pairwise":
            name, schema = "judge_pairwise", PAIR_SCHEMA
            tpl = load_template(name, p.lang)
            msgs = tpl.render(prompt=p.prompt, answer_a=self._cut(gens[0].answer),
                              answer_b=self._cut(gens[1].answer))
        elif task.mode == "ranking":
            name, schema = "judge_ranking", RANK_SCHEMA
            tpl = load_template(name, p.lang)
            labels = string.ascii_uppercase[: len(gens)]
            answers = "\n\n".join(f"[{lab}]\n<<<\n{self._cut(g.answer)}\n>>>"
                                  for lab, g in zip(labels, gens, strict=True))
            msgs = tpl.render(prompt=p.prompt, k=len(gens), labels=", ".join(labels),
                              answers=answers)
        else:
            name, schema = "judge_rubric", RUBRIC_SCHEMA
            tpl = load_template(name, p.lang)
            c = p.criteria[task.criterion or 0]
            msgs = tpl.render(prompt=p.prompt, answer=self._cut(gens[0].answer),
                              criterion=c.name, description=c.description, bands=bands_text(c))
        retry = load_template("json_retry", p.lang)
        req = _build(msgs, schema, tags={name: tpl.sha256, "json_retry": retry.sha256},
                     temperature=0.0, max_tokens=self.max_tokens, json_mode=True, seed=self.seed,
                     stage=f"judge {task.mode}", item=task.key)
        return req, tpl.sha256

    def _prompt(self, pid: str) -> EvalPrompt:
        if pid not in self._prompts:
            p = self.store.evaluation.get_eval_prompt(pid)
            if p is None:
                raise KeyError(f"prompt {pid} is not in the store")
            self._prompts[pid] = p
        return self._prompts[pid]

    def _gen(self, model: str, pid: str) -> Generation:
        gens = self.store.evaluation.generations(model, pid)
        if not gens:
            raise KeyError(f"no answer of {model} to {pid}")
        return gens[0]

    # -- doing ----------------------------------------------------------------------------
    async def do(self, task: JudgeTask) -> Judgment | RubricScore | None:
        """Do one task; returns its record (not stored) or None, with the reason in
        `failures[task.key]`."""
        p = self._prompt(task.prompt_id)
        req, h = self.requests(task)
        retry = load_template("json_retry", p.lang).user
        if task.mode == "pairwise":
            parse: Callable[[dict[str, Any]], Any] = parse_pair
        elif task.mode == "ranking":
            labels = string.ascii_uppercase[: len(task.models)]
            def parse(obj: dict[str, Any]) -> Any:
                return parse_rank(obj, labels)
        else:
            parse = parse_rubric
        try:
            async with self.sem:
                value, resps = await complete_json(self.llm, req, parse, retry_message=retry,
                                                   policy=self.policy)
        except EndpointsDown:  # no server answers: the run stops, the task stays pending
            raise
        except (CompletionError, LLMError) as e:
            self.failures[task.key] = str(e)[:300]
            return None
        keys = [r.key or "" for r in resps]
        if task.mode == "rubric":
            score, reason = value
            c = p.criteria[task.criterion or 0]
            return RubricScore(prompt_id=p.id, model=task.models[0], criterion=task.criterion or 0,
                               criterion_name=c.name, score=score, reason=reason,
                               judge=self.name, template_hash=h, cache_keys=keys)
        if task.mode == "pairwise":
            dims, v5, reason = value
            a, b = task.models
            label = {"A": a, "B": b, "tie": "tie"}
            return Judgment(prompt_id=p.id, kind="pair", models=[a, b], judge=self.name,
                            winner=label[dims["overall"]],
                            dimensions={d: label[v] for d, v in dims.items()},
                            cache_keys=keys, template_hash=h, reason=reason, verdict=v5)
        seen, reason = value
        by_label = dict(zip(string.ascii_uppercase, task.models, strict=False))
        return Judgment(prompt_id=p.id, kind="rank", models=sorted(task.models), judge=self.name,
                        ranks={by_label[lab]: float(r) for r, lab in enumerate(seen, 1)},
                        cache_keys=keys, template_hash=h, reason=reason)

    def save(self, record: Judgment | RubricScore | None) -> None:
        if isinstance(record, RubricScore):
            self.store.evaluation.put_rubric_score(record)
        elif record is not None:
            self.store.evaluation.put_judgment(record)

    async def _do_and_save(self, task: JudgeTask) -> Judgment | RubricScore | None:
        rec = await self.do(task)
        self.save(rec)
        return rec

    async def pair(self, p: EvalPrompt, first: Generation, second: Generation) -> Judgment | None:
        """Judge `first` shown as A against `second` shown as B (None when already judged)."""
        self._prompts[p.id] = p
        t = JudgeTask(mode="pairwise", prompt_id=p.id, models=[first.model, second.model],
                      judge=self.name)
        if self.store.evaluation.has_judgment(t.key):
            return None
        return await self._do_and_save(t)  # type: ignore[return-value]

    async def rank(self, p: EvalPrompt, gens: list[Generation]) -> Judgment | None:
        """Rank K answers shown under letters in a per-prompt random order."""
        ts = self.tasks([p], [g.model for g in gens], "ranking")
        return await self._do_and_save(ts[0]) if ts else None  # type: ignore[return-value]

    async def run(self, prompts: list[EvalPrompt], models: list[str], mode: str = "pairwise",
                  on_item: Callable[[], None] | None = None) -> int:
        """Judge every prompt that the models answered; returns the number of new records."""
        tasks = self.tasks(prompts, models, mode)

        async def one(t: JudgeTask) -> Judgment | RubricScore | None:
            rec = await self._do_and_save(t)
            if on_item:
                on_item()
            return rec

        done = await asyncio.gather(*(one(t) for t in tasks))
        return sum(1 for d in done if d is not None)


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


class JudgeJob:
    """The executor-facing job (see `coig_writer.executors`): an item is a `JudgeTask`; the
    result is the stored verdict or rubric score. Rebuilt on a worker by `judge_job(spec, ...)`;
    register it with `register_job("judge", "coig_writer.evaluate.judge:judge_job")`."""

    kind = "judge"

    def __init__(self, judge: Judge, prompts: list[EvalPrompt] | None = None,
                 models: list[str] | None = None, mode: str = "pairwise"):
        self.judge, self.prompts, self.models, self.mode = judge, prompts or [], models or [], mode

    def spec(self) -> dict[str, Any]:
        j = self.judge
        return {"kind": self.kind, "name": j.name, "mode": self.mode, "models": self.models,
                "max_tokens": j.max_tokens, "max_answer_chars": j.max_answer_chars,
                "seed": j.seed, "attempts": j.policy.attempts}

    def pending(self, limit: int | None = None) -> Iterable[JudgeTask]:
        tasks = self.judge.tasks(self.prompts, self.models, self.mode)
        return tasks if limit is None else tasks[:limit]

    def count_pending(self, limit: int | None = None) -> int:
        return len(list(self.pending(limit)))

    def item_id(self, item: JudgeTask | dict[str, Any]) -> str:
        return (item if isinstance(item, JudgeTask) else JudgeTask.model_validate(item)).key

    def still_pending(self, item: JudgeTask | dict[str, Any]) -> bool:
        """Not judged meanwhile (by another process on the same store)."""
        mode = item.mode if isinstance(item, JudgeTask) else item["mode"]
        ev = self.judge.store.evaluation
        return not (ev.has_rubric_score if mode == "rubric" else ev.has_judgment)(self.item_id(item))

    def shard_context(self, items: list[JudgeTask]) -> dict[str, Any]:
        """The prompts and answers a worker's shard store needs to judge `items`."""
        store = self.judge.store
        pids = sorted({t.prompt_id for t in items})
        prompts = [p.model_dump(mode="json") for pid in pids
                   if (p := store.evaluation.get_eval_prompt(pid)) is not None]
        gens = [g.model_dump(mode="json") for t in items for m in t.models
                for g in store.evaluation.generations(m, t.prompt_id)]
        return {"prompts": prompts, "generations": gens}

    def load_context(self, ctx: dict[str, Any]) -> None:
        store = self.judge.store
        for p in ctx["prompts"]:
            store.evaluation.put_eval_prompt(EvalPrompt.model_validate(p))
        for g in ctx["generations"]:
            store.evaluation.put_generation(Generation.model_validate(g))

    async def process(self, item: JudgeTask | dict[str, Any]) -> Any:
        from ..executors.base import ItemResult

        task = item if isinstance(item, JudgeTask) else JudgeTask.model_validate(item)
        rec = await self.judge.do(task)
        self.judge.save(rec)
        if rec is None:
            return ItemResult(task.key, "failed", self.judge.failures.get(task.key))
        return ItemResult(task.key, "done", rec)


def judge_job(spec: dict[str, Any], store: Store, llm: CachedBackend) -> JudgeJob:
    judge = Judge(store, llm, spec["name"], max_tokens=spec["max_tokens"],
                  max_answer_chars=spec["max_answer_chars"], seed=spec["seed"],
                  attempts=spec["attempts"])
    return JudgeJob(judge, models=spec["models"], mode=spec["mode"])
