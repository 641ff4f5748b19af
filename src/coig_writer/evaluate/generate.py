"""Run a model over an evaluation prompt set; resumable; thinking kept apart from the answer.

A truncated answer is asked again once with more tokens (up to `max_tokens_cap`); if it is still
cut, it is stored with `truncated=True` (the report counts them) rather than passed off as whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ..executors.base import ItemResult
from ..llm import (
    Backend,
    CachedBackend,
    ChatRequest,
    ChatResponse,
    CompletionError,
    CompletionPolicy,
    complete,
    split_thinking,
)
from ..prompts import load_template
from ..records import EvalPrompt, Generation
from ..store import Store

__all__ = ["GenerateJob", "constraints_block", "generate", "generate_job", "split_thinking"]


def constraints_block(p: EvalPrompt) -> str:
    if not p.constraints:
        return ""
    head = "要求：" if p.lang == "zh" else "Requirements:"
    return "\n" + head + "\n" + "\n".join(f"- {c}" for c in p.constraints)


class GenerateJob:
    """One item is one prompt; the result is the model's stored generation."""

    kind = "generate"

    def __init__(self, store: Store, llm: CachedBackend, model_name: str,
                 prompts: list[EvalPrompt] | None = None, *, temperature: float = 0.7,
                 max_tokens: int = 2048, max_tokens_cap: int | None = None, seed: int = 0,
                 system: str | None = None):
        self.store, self.llm, self.model_name = store, llm, model_name
        self.prompts = prompts or []
        self.params: dict[str, Any] = {"temperature": temperature, "max_tokens": max_tokens,
                                       "seed": seed, "system": system}
        self.cap = max_tokens_cap or 2 * max_tokens

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "model_name": self.model_name, "params": self.params,
                "cap": self.cap}

    def pending(self, limit: int | None = None) -> Iterator[EvalPrompt]:
        n = 0
        for p in self.prompts:
            if limit is not None and n >= limit:
                return
            if not self.store.evaluation.has_generation(self.model_name, p.id):
                n += 1
                yield p

    def count_pending(self, limit: int | None = None) -> int:
        return sum(1 for _ in self.pending(limit))

    def item_id(self, item: EvalPrompt) -> str:
        return f"gen:{self.model_name}:{item.id}"

    def still_pending(self, item: EvalPrompt) -> bool:
        """Not answered meanwhile (by another process on the same store)."""
        return not self.store.evaluation.has_generation(self.model_name, item.id)

    async def process(self, p: EvalPrompt) -> ItemResult:
        prm = self.params
        tpl = load_template("generate", p.lang)
        msgs = tpl.render(prompt=p.prompt, constraints=constraints_block(p))
        if prm["system"]:
            msgs.insert(0, {"role": "system", "content": prm["system"]})
        req = ChatRequest.build(msgs, tags={"generate": tpl.sha256},
                                temperature=prm["temperature"], max_tokens=prm["max_tokens"],
                                seed=prm["seed"], item=self.item_id(p), stage="generate")
        # a loop is the model's own behaviour and is judged as such; truncation is retried
        policy = CompletionPolicy(attempts=2, max_tokens_cap=self.cap, detect_loops=False)
        try:
            resp, _ = await complete(self.llm, req, lambda r: r, policy=policy)
            truncated = False
        except CompletionError as e:
            resp, truncated = e.responses[-1], True
        gen = self._generation(p, resp, truncated)
        self.store.evaluation.put_generation(gen)
        return ItemResult(p.id, "truncated" if truncated else "done", gen)

    def _generation(self, p: EvalPrompt, resp: ChatResponse, truncated: bool) -> Generation:
        raw = f"<think>{resp.thinking}</think>{resp.text}" if resp.thinking else resp.text
        return Generation(model=self.model_name, prompt_id=p.id, raw=raw, thinking=resp.thinking,
                          answer=resp.text, params=self.params, backend_model=self.llm.model_id,
                          cache_key=resp.key, finish_reason=resp.finish_reason,
                          truncated=truncated, usage=resp.usage)


def generate_job(spec: dict[str, Any], store: Store, llm: CachedBackend) -> GenerateJob:
    prm = spec["params"]
    return GenerateJob(store, llm, spec["model_name"], temperature=prm["temperature"],
                       max_tokens=prm["max_tokens"], max_tokens_cap=spec["cap"],
                       seed=prm["seed"], system=prm["system"])


async def generate(store: Store, backend: Backend, model_name: str, prompts: list[EvalPrompt], *,
                   temperature: float = 0.7, max_tokens: int = 2048,
                   max_tokens_cap: int | None = None, seed: int = 0, system: str | None = None,
                   concurrency: int = 4,
                   on_item: Callable[[Generation | None], None] | None = None
                   ) -> dict[str, Any]:
    """Answer every prompt that `model_name` has not answered yet; returns counts."""
    from ..executors.local import run_local

    llm = backend if isinstance(backend, CachedBackend) else CachedBackend(backend, store)
    job = GenerateJob(store, llm, model_name, prompts, temperature=temperature,
                      max_tokens=max_tokens, max_tokens_cap=max_tokens_cap, seed=seed,
                      system=system)
    skipped = len(prompts) - job.count_pending()
    out = await run_local(job, job.pending(), concurrency=concurrency,
                          on_item=(lambda r: on_item(r.value)) if on_item else None)
    return {"done": out.done - len(out.errors), "skipped": skipped, "errors": out.errors,
            "truncated": out.labels.get("truncated", 0),
            "accounting": llm.accounting.summary(), "totals": llm.accounting.totals()}
