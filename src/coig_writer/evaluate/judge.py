"""LLM judging: pairwise in both orders (inconsistent verdicts are ties) and K-way ranking.

Judge prompts are versioned templates (`judge_pairwise`, `judge_ranking`, zh/en by the prompt's
language); every verdict records the judge model and template hash; calls go through the cache,
so reruns only judge what is missing.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import re
import string
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from ..llm import Backend, CachedBackend, ChatRequest, JSONOutputError, LLMError, chat_json
from ..prompts import load_template
from ..records import EvalPrompt, Generation, Judgment
from ..store import Store
from .stats import Outcome, outcomes_from_ranking

DIMENSIONS = ("content_quality", "creative_merit", "cultural_appropriateness", "task_fulfilment",
              "overall")
_TIE = {"tie", "equal", "draw", "平局", "相同", "一样", "none"}


def norm_verdict(value: Any) -> str | None:
    s = str(value or "").strip().strip("\"'“”").lower()
    if s in ("a", "answer a", "回答a", "回答 a"):
        return "A"
    if s in ("b", "answer b", "回答b", "回答 b"):
        return "B"
    return "tie" if s in _TIE else None


def _label(item: Any, labels: str) -> str | None:
    """The answer label in a ranking entry: "B", "[B]", "回答B", "Answer B" -> "B"."""
    found = re.findall(r"(?<![A-Za-z])([A-Za-z])(?![A-Za-z])", str(item))
    hits = [f.upper() for f in found if f.upper() in labels]
    return hits[0] if hits else None


class Judge:
    """Runs judgments with one judge model; `name` identifies it in records."""

    def __init__(self, store: Store, backend: Backend, name: str | None = None, *,
                 max_tokens: int = 300, max_answer_chars: int = 6000, concurrency: int = 4,
                 seed: int = 0):
        self.store = store
        self.llm = backend if isinstance(backend, CachedBackend) else CachedBackend(backend, store)
        self.name = name or self.llm.model_id
        self.max_tokens = max_tokens
        self.max_answer_chars = max_answer_chars
        self.sem = asyncio.Semaphore(max(1, concurrency))
        self.seed = seed
        self.failures: dict[str, str] = {}

    def _cut(self, text: str) -> str:
        return text if len(text) <= self.max_answer_chars else text[: self.max_answer_chars] + " …"

    async def _ask(self, template: str, lang: str, **variables: Any) -> tuple[dict, list[str], str]:
        tpl = load_template(template, lang)
        retry = load_template("json_retry", lang)
        req = ChatRequest.build(tpl.render(**variables), tags={template: tpl.sha256,
                                                               "json_retry": retry.sha256},
                                temperature=0.0, max_tokens=self.max_tokens, json_mode=True,
                                seed=self.seed)
        async with self.sem:
            obj, resps = await chat_json(self.llm, req, retry.user, retries=1)
        return obj, [r.key or "" for r in resps], tpl.sha256

    async def pair(self, p: EvalPrompt, first: Generation, second: Generation) -> Judgment | None:
        """Judge `first` shown as A against `second` shown as B."""
        j = Judgment(prompt_id=p.id, kind="pair", models=[first.model, second.model],
                     judge=self.name)
        if self.store.has_judgment(j.key):
            return None
        try:
            obj, keys, h = await self._ask("judge_pairwise", p.lang, prompt=p.prompt,
                                           answer_a=self._cut(first.answer),
                                           answer_b=self._cut(second.answer))
        except (JSONOutputError, LLMError) as e:
            self.failures[j.key] = str(e)[:300]
            return None
        label = {"A": first.model, "B": second.model, "tie": "tie"}
        dims = {d: label[v] for d in DIMENSIONS if (v := norm_verdict(obj.get(d)))}
        if "overall" not in dims:
            self.failures[j.key] = f"no usable overall verdict in {obj!r}"[:300]
            return None
        j.winner, j.dimensions, j.cache_keys, j.template_hash = dims["overall"], dims, keys, h
        j.reason = str(obj.get("reason", ""))
        self.store.put_judgment(j)
        return j

    async def rank(self, p: EvalPrompt, gens: list[Generation]) -> Judgment | None:
        """Rank K answers shown under letters in a per-prompt random order."""
        order = sorted(gens, key=lambda g: g.model)
        random.Random(f"{self.seed}:{p.id}").shuffle(order)
        labels = string.ascii_uppercase[: len(order)]
        j = Judgment(prompt_id=p.id, kind="rank", models=sorted(g.model for g in gens),
                     judge=self.name)
        if self.store.has_judgment(j.key):
            return None
        answers = "\n\n".join(f"[{lab}]\n<<<\n{self._cut(g.answer)}\n>>>"
                              for lab, g in zip(labels, order, strict=True))
        try:
            obj, keys, h = await self._ask("judge_ranking", p.lang, prompt=p.prompt,
                                           k=len(order), labels=", ".join(labels),
                                           answers=answers)
        except (JSONOutputError, LLMError) as e:
            self.failures[j.key] = str(e)[:300]
            return None
        ranked = obj.get("ranking")
        if not isinstance(ranked, list):  # small judges rename the key
            ranked = next((v for v in obj.values() if isinstance(v, list)), [])
        seen = [lab for lab in dict.fromkeys(_label(x, labels) for x in ranked) if lab]
        if len(seen) < len(labels) - 1:
            self.failures[j.key] = f"ranking does not cover the answers: {ranked}"[:300]
            return None
        seen += [lab for lab in labels if lab not in seen]  # one omitted label ranks last
        by_label = dict(zip(labels, order, strict=True))
        j.ranks = {by_label[lab].model: float(r) for r, lab in enumerate(seen, 1)}
        j.cache_keys, j.template_hash, j.reason = keys, h, str(obj.get("reason", ""))
        self.store.put_judgment(j)
        return j

    async def run(self, prompts: list[EvalPrompt], models: list[str], mode: str = "pairwise",
                  on_item: Callable[[], None] | None = None) -> int:
        """Judge every prompt that all `models` answered; returns the number of new verdicts."""
        gens: dict[tuple[str, str], Generation] = {(g.model, g.prompt_id): g
                                                   for g in self.store.generations()}
        tasks = []
        for p in prompts:
            mine = [gens[(m, p.id)] for m in models if (m, p.id) in gens]
            if mode == "ranking" and len(mine) >= 2:
                tasks.append(self.rank(p, mine))
            elif mode == "pairwise":
                for a, b in itertools.combinations(mine, 2):
                    tasks += [self.pair(p, a, b), self.pair(p, b, a)]

        async def tick(coro: Any) -> Judgment | None:
            out = await coro
            if on_item:
                on_item()
            return out

        done = await asyncio.gather(*(tick(t) for t in tasks))
        return sum(1 for d in done if d is not None)

    def planned(self, prompts: list[EvalPrompt], models: list[str], mode: str) -> int:
        have = {(g.model, g.prompt_id) for g in self.store.generations()}
        n = [sum((m, p.id) in have for m in models) for p in prompts]
        return sum(1 for k in n if k >= 2) if mode == "ranking" else sum(k * (k - 1) for k in n)


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
