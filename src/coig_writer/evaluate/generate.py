"""Run a model over an evaluation prompt set; resumable; thinking split from the answer."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

from ..llm import Backend, CachedBackend, ChatRequest, LLMError
from ..prompts import load_template
from ..records import EvalPrompt, Generation
from ..store import Store

_THINK = re.compile(r"^\s*<think>(.*?)</think>\s*", re.S | re.I)
_OPEN = re.compile(r"^\s*<think>", re.I)


def split_thinking(text: str) -> tuple[str, str]:
    """(thinking, answer) from `<think>...</think>answer`; an unclosed think block (cut off
    by max_tokens) is all thinking and no answer."""
    m = _THINK.match(text)
    if m:
        return m.group(1).strip(), text[m.end():].strip()
    if _OPEN.match(text):
        return _OPEN.sub("", text, count=1).strip(), ""
    return "", text.strip()


def constraints_block(p: EvalPrompt) -> str:
    if not p.constraints:
        return ""
    head = "要求：" if p.lang == "zh" else "Requirements:"
    return "\n" + head + "\n" + "\n".join(f"- {c}" for c in p.constraints)


async def generate(store: Store, backend: Backend, model_name: str, prompts: list[EvalPrompt], *,
                   temperature: float = 0.7, max_tokens: int = 2048, seed: int = 0,
                   system: str | None = None, concurrency: int = 4,
                   on_item: Callable[[Generation | None], None] | None = None
                   ) -> dict[str, Any]:
    """Answer every prompt that `model_name` has not answered yet; returns counts."""
    llm = backend if isinstance(backend, CachedBackend) else CachedBackend(backend, store)
    sem = asyncio.Semaphore(max(1, concurrency))
    counts: dict[str, Any] = {"done": 0, "skipped": 0, "errors": {}}
    params = {"temperature": temperature, "max_tokens": max_tokens, "seed": seed,
              "system": system}

    async def one(p: EvalPrompt) -> None:
        if store.has_generation(model_name, p.id):
            counts["skipped"] += 1
            return
        tpl = load_template("generate", p.lang)
        msgs = tpl.render(prompt=p.prompt, constraints=constraints_block(p))
        if system:
            msgs.insert(0, {"role": "system", "content": system})
        req = ChatRequest.build(msgs, tags={"generate": tpl.sha256}, temperature=temperature,
                                max_tokens=max_tokens, seed=seed)
        async with sem:
            try:
                resp = await llm.chat(req)
            except LLMError as e:
                counts["errors"][p.id] = str(e)[:300]
                if on_item:
                    on_item(None)
                return
        thinking, answer = split_thinking(resp.text)
        gen = Generation(model=model_name, prompt_id=p.id, raw=resp.text, thinking=thinking,
                         answer=answer, params=params, backend_model=llm.model_id,
                         cache_key=resp.key)
        store.put_generation(gen)
        counts["done"] += 1
        if on_item:
            on_item(gen)

    await asyncio.gather(*(one(p) for p in prompts))
    return counts
