"""Predict the calls and tokens of a judge run before it starts: every pending task's first
request is rendered exactly as it would be sent and its tokens counted approximately (a Han
character ~ 0.7 tokens, other text ~ 4 characters per token, as in Qwen/GPT tokenizers);
completion tokens are bounded by max_tokens, with a typical size from the template's output."""

from __future__ import annotations

import re
from typing import Any

from ..llm import ChatRequest, ChatResponse, LLMError
from ..records import EvalPrompt
from ..store import Store
from .judge import Judge
from .judge_modes import MODES

_HAN = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]")
MESSAGE_OVERHEAD = 4  # chat template tokens per message


def approx_tokens(text: str) -> int:
    han = len(_HAN.findall(text))
    return int(round(0.7 * han + (len(text) - han) / 4))


class _Unsent:
    """Stands in for a backend: estimating renders requests but never sends one."""

    def __init__(self, model_id: str):
        self.model_id = model_id

    async def chat(self, request: ChatRequest) -> ChatResponse:
        raise LLMError("estimate sends nothing")

    async def aclose(self) -> None:
        return None


def estimate(store: Store, prompts: list[EvalPrompt], models: list[str], mode: str, *,
             judge: str, max_tokens: int = 300) -> dict[str, Any]:
    j = Judge(store, _Unsent(judge), judge, max_tokens=max_tokens)  # type: ignore[arg-type]
    todo = j.tasks(prompts, models, mode)
    total = len(j.tasks(prompts, models, mode, include_done=True))
    prompt_tokens = 0
    for t in todo:
        req, _ = j.requests(t)
        prompt_tokens += sum(approx_tokens(c) + MESSAGE_OVERHEAD for _, c in req.messages)
    return {"calls": len(todo), "done": total - len(todo), "prompt_tokens": prompt_tokens,
            "completion_tokens": len(todo) * max_tokens,
            "completion_typical": len(todo) * min(max_tokens, MODES[mode].typical_output)}
