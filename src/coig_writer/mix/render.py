"""Render samples as chat turns with the reasoning in the model's thinking slot (or dropped),
and check a tokenizer's chat template: the thinking slot survives and only the assistant turn
(reasoning + answer) is trained."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .samples import SFTSample

REASONING_MODES = ("think", "drop")


class TemplateCheckError(ValueError):
    """The chat template cannot train this data as asked."""


def assistant_content(s: SFTSample, reasoning: str = "think", open_tag: str = "<think>",
                      close_tag: str = "</think>") -> str:
    if reasoning not in REASONING_MODES:
        raise ValueError(f"reasoning must be one of {REASONING_MODES}, got {reasoning!r}")
    if reasoning == "think" and s.reasoning:
        return f"{open_tag}\n{s.reasoning}\n{close_tag}\n\n{s.response}"
    return s.response


def prompt_completion(s: SFTSample, reasoning: str = "think") -> dict[str, Any]:
    """TRL's conversational prompt-completion row: the loss covers the completion only."""
    return {"id": s.id, "prompt": [{"role": "user", "content": s.prompt}],
            "completion": [{"role": "assistant", "content": assistant_content(s, reasoning)}]}


def messages_row(s: SFTSample, reasoning: str = "think") -> dict[str, Any]:
    row = prompt_completion(s, reasoning)
    return {"id": s.id, "messages": row["prompt"] + row["completion"]}


def _ids(out: Any) -> list[int]:
    if hasattr(out, "keys") and "input_ids" in out:
        out = out["input_ids"]
    return list(out)


@dataclass
class MaskCheck:
    text: str  # the full rendered conversation
    prompt_tokens: int
    total_tokens: int
    trained_text: str  # what the loss covers

    def show(self, width: int = 400) -> str:
        prompt_part = self.text[: len(self.text) - len(self.trained_text)]
        return (f"--- not trained ({self.prompt_tokens} tokens) ---\n{prompt_part[-width:]}\n"
                f"--- trained ({self.total_tokens - self.prompt_tokens} tokens) ---\n"
                f"{self.trained_text[:width]}{' …' if len(self.trained_text) > width else ''}")


def check_template(tokenizer: Any, s: SFTSample, reasoning: str = "think") -> MaskCheck:
    """Tokenize like TRL does for prompt-completion data and verify the loss mask: the prompt
    tokens are a prefix of the full sequence, the trained part holds the reasoning (when kept)
    and the answer, and none of the user's prompt."""
    row = prompt_completion(s, reasoning)
    prompt_ids = _ids(tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True,
                                                    tokenize=True))
    full_ids = _ids(tokenizer.apply_chat_template(row["prompt"] + row["completion"],
                                                  tokenize=True))
    text = tokenizer.decode(full_ids)
    marker = s.reasoning.strip()[:40]
    if reasoning == "think" and s.reasoning and marker not in text:
        raise TemplateCheckError("the chat template drops the reasoning (no thinking slot); "
                                 "use a template with one (e.g. Qwen3) or --reasoning drop")
    if full_ids[: len(prompt_ids)] != prompt_ids:
        raise TemplateCheckError("chat template is not prefix-stable: the prompt renders "
                                 "differently alone and before the answer")
    trained = tokenizer.decode(full_ids[len(prompt_ids):])
    if reasoning == "think" and s.reasoning:
        if marker not in trained:
            raise TemplateCheckError("the reasoning is outside the trained part")
    if s.response.strip()[:40] not in trained:
        raise TemplateCheckError("the answer is outside the trained part")
    if s.prompt.strip()[:40] in trained:
        raise TemplateCheckError("the user's prompt would be trained")
    return MaskCheck(text, len(prompt_ids), len(full_ids), trained)
