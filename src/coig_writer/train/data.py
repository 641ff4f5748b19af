"""Tokenised SFT samples (loss on the completion only) and the policy for samples longer than
max_length, applied and counted before training."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .world import TrainError


@dataclass
class DataReport:
    samples: int
    kept: int
    overlong: int
    policy: str
    tokens: int
    longest: int
    mean_tokens: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _chat_ids(tok: Any, messages: list[dict[str, str]], generation_prompt: bool) -> list[int]:
    out = tok.apply_chat_template(messages, tokenize=True, add_generation_prompt=generation_prompt)
    if hasattr(out, "keys"):
        out = out["input_ids"]
    return list(out)


def tokenize_row(tok: Any, row: dict[str, Any]) -> tuple[list[int], list[int]]:
    """input_ids and labels (-100 outside the completion) of one prompt-completion row."""
    if isinstance(row.get("prompt"), list):
        prompt = _chat_ids(tok, row["prompt"], True)
        full = _chat_ids(tok, row["prompt"] + row["completion"], False)
    else:
        prompt = tok(row["prompt"], add_special_tokens=False)["input_ids"]
        full = prompt + tok(row["completion"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    n = 0
    while n < min(len(prompt), len(full)) and prompt[n] == full[n]:
        n += 1
    return full, [-100] * n + full[n:]


def fit_length(ids: list[int], labels: list[int], max_length: int, policy: str, eos: int | None = None
               ) -> tuple[list[int], list[int]] | None:
    """Apply the overlong policy: None to drop; truncation keeps the sample's end from its last EOS
    on (e.g. Qwen's `<|im_end|>` and the newline after it), so the model still learns to stop."""
    if len(ids) <= max_length:
        return ids, labels
    if policy == "drop":
        return None
    last = max((i for i in range(len(ids) - 1, max(-1, len(ids) - 5), -1) if ids[i] == eos), default=None)
    tail = len(ids) - last if last is not None else 1
    return ids[:max_length - tail] + ids[-tail:], labels[:max_length - tail] + labels[-tail:]


def load_rows(path: Path) -> list[dict[str, Any]]:
    rows, bad = [], []
    for i, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not ({"prompt", "completion"} <= row.keys()):
                raise ValueError("needs 'prompt' and 'completion'")
            rows.append(row)
        except (ValueError, AttributeError) as e:
            bad.append(f"{path}:{i}: {e}")
    if bad:
        raise TrainError(f"{len(bad)} malformed row(s) in the training data, first: {bad[0]}")
    if not rows:
        raise TrainError(f"{path} holds no samples")
    return rows


def tokenized_dataset(path: Path, tok: Any, max_length: int, policy: str) -> tuple[Any, DataReport]:
    """A datasets.Dataset of input_ids/labels ready for TRL (no further preparation) and a report."""
    from datasets import Dataset

    rows = load_rows(path)
    ids_col, labels_col, lengths, overlong = [], [], [], 0
    for row in rows:
        ids, labels = tokenize_row(tok, row)
        overlong += len(ids) > max_length
        fitted = fit_length(ids, labels, max_length, policy, tok.eos_token_id)
        if fitted is None:
            continue
        ids_col.append(fitted[0])
        labels_col.append(fitted[1])
        lengths.append(len(fitted[0]))
    if not ids_col:
        raise TrainError(f"all {len(rows)} samples are longer than max_length {max_length} and the "
                         f"policy is drop; raise max_length or use overlong: truncate")
    report = DataReport(samples=len(rows), kept=len(ids_col), overlong=overlong, policy=policy,
                        tokens=sum(lengths), longest=max(lengths), mean_tokens=sum(lengths) / len(lengths))
    return Dataset.from_dict({"input_ids": ids_col, "labels": labels_col}), report
