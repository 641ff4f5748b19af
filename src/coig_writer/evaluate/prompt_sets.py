"""Evaluation prompt sets: bundled zh/en sets and users' own JSONL/Parquet files."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..genres import load_taxonomy
from ..readers import BadRecord, read_rows, validate
from ..records import EvalPrompt, QuarantineEntry
from ..store import Store

BUNDLED = {"bundled-zh": "prompts_zh.jsonl", "bundled-en": "prompts_en.jsonl"}


def load_prompt_file(path: Path, set_name: str) -> tuple[list[EvalPrompt], list[QuarantineEntry]]:
    """Rows need `id`, `lang` (zh/en) and `prompt`; `genre`/`category` may be any taxonomy
    name; `constraints` is a list of strings."""
    tax = load_taxonomy()
    good, bad = [], []
    for row in read_rows(path):
        try:
            if row.error or row.data is None:
                raise ValueError(row.error or "empty row")
            d = dict(row.data)
            cat, genre = tax.resolve(str(d.get("genre") or ""))
            d["category"] = d.get("category") and (tax.resolve(str(d["category"]))[0]
                                                   or d["category"]) or cat
            d["genre"] = genre or d.get("genre")
            if not isinstance(d.get("id"), (str, int)) or d["id"] == "":
                raise BadRecord("field 'id': missing (text or a number)")
            d["id"] = str(d["id"])
            good.append(validate(EvalPrompt, {**d, "set_name": set_name}))
        except (ValueError, TypeError) as e:
            bad.append(QuarantineEntry(path=row.path, line=row.line, error=str(e), raw=row.raw))
    return good, bad


def add_prompt_set(store: Store, source: str, set_name: str | None = None
                   ) -> tuple[int, list[QuarantineEntry]]:
    """Store a bundled set (`bundled-zh`, `bundled-en`) or a file; returns (count, bad rows)."""
    if source in BUNDLED:
        res = resources.files("coig_writer").joinpath(f"data/eval/{BUNDLED[source]}")
        with resources.as_file(res) as path:
            prompts, bad = load_prompt_file(path, source)
    else:
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"no such prompt set: {source} (bundled: {', '.join(sorted(BUNDLED))})")
        prompts, bad = load_prompt_file(path, set_name or path.stem)
    for p in prompts:
        store.evaluation.put_eval_prompt(p)
    for q in bad:
        store.corpus.quarantine(q)
    return len(prompts), bad
