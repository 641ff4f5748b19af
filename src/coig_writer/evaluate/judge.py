"""LLM judging: pairwise in both orders (inconsistent verdicts are ties), K-way ranking, and
rubric scoring (WritingBench: one call per criterion, 1-10 against the criterion's bands).

Work is cut into small serializable `JudgeTask`s (`Judge.tasks`), each done by `Judge.do`
(which returns a record and writes nothing), so any executor can run them; `Judge.run` is a
bounded-concurrency gather that stores results. Judge prompts are versioned templates; every
verdict records the judge and template hash; calls go through the cache, so reruns only ask what
is missing. A JSON answer that lacks a required field (verdict, score) raises ValueError in the
parser, so the judge is asked again with the error shown. What differs between modes (template,
schema, planning, parsing, records, aggregation) is one `JudgeMode` object each
(`judge_modes.py`); this module runs any of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from ..llm import Backend, CachedBackend, ChatRequest, EndpointsDown, LLMError
from ..llm.policy import CompletionError, CompletionPolicy, complete_json
from ..prompts import load_template
from ..records import EvalPrompt, Generation, Judgment, RubricScore
from ..store import Store
from .judge_modes import (  # noqa: F401  (re-exported: the judge's public names)
    DIMENSIONS,
    MODES,
    PAIR_SCHEMA,
    RANK_SCHEMA,
    RUBRIC_SCHEMA,
    VERDICTS,
    JudgeTask,
    bands_text,
    judge_mode,
    norm_verdict,
    norm_verdict5,
    pair_outcomes,
    parse_pair,
    parse_rank,
    parse_rubric,
    rank_outcomes,
)


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
        jm = judge_mode(mode)
        have = {(g.model, g.prompt_id) for g in self.store.evaluation.generations()}
        out: list[JudgeTask] = []
        for p in prompts:
            self._prompts[p.id] = p
            out += jm.plan(p, [m for m in models if (m, p.id) in have], self.name, self.seed)
        if include_done:
            return out
        return [t for t in out if not jm.is_done(self.store, t.key)]

    def planned(self, prompts: list[EvalPrompt], models: list[str], mode: str) -> int:
        return len(self.tasks(prompts, models, mode))

    def requests(self, task: JudgeTask) -> tuple[ChatRequest, str]:
        """The first request of a task and the template hash (also used by `estimate`)."""
        jm = MODES[task.mode]
        p = self._prompt(task.prompt_id)
        answers = [self._cut(self._gen(m, p.id).answer) for m in task.models]
        tpl = load_template(jm.template, p.lang)
        retry = load_template("json_retry", p.lang)
        req = ChatRequest.build(tpl.render(**jm.variables(task, p, answers)),
                                json_schema=jm.schema,
                                tags={jm.template: tpl.sha256, "json_retry": retry.sha256},
                                temperature=0.0, max_tokens=self.max_tokens, json_mode=True,
                                seed=self.seed, stage=f"judge {task.mode}", item=task.key)
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
        jm = MODES[task.mode]
        p = self._prompt(task.prompt_id)
        req, h = self.requests(task)
        retry = load_template("json_retry", p.lang).user
        try:
            async with self.sem:
                value, resps = await complete_json(self.llm, req,
                                                   lambda obj: jm.parse(obj, task),
                                                   retry_message=retry, policy=self.policy)
        except EndpointsDown:  # no server answers: the run stops, the task stays pending
            raise
        except (CompletionError, LLMError) as e:
            self.failures[task.key] = str(e)[:300]
            return None
        return jm.record(task, p, value, self.name, [r.key or "" for r in resps], h)

    def save(self, record: Judgment | RubricScore | None) -> None:
        if record is not None:
            MODES["rubric" if isinstance(record, RubricScore) else "pairwise"].save(self.store,
                                                                                    record)

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
        return not MODES[mode].is_done(self.judge.store, self.item_id(item))

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
