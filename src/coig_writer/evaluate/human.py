"""Human blind rankings: import them (the review app will write them directly)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ..readers import BadRecord, read_rows, validate
from ..records import Judgment, QuarantineEntry
from ..store import Store


class RankingRow(BaseModel):
    """One rater's ranking of the answers to one prompt."""

    model_config = ConfigDict(extra="allow")
    prompt_id: str | int
    rater: str = Field(min_length=1)
    ranks: dict[str, float] | None = None
    order: list[str] | None = None


def _ranks(row: RankingRow) -> dict[str, float]:
    if (row.ranks is None) == (row.order is None):
        raise BadRecord("give exactly one of `ranks` ({model: rank}) or `order` ([best, ...])")
    if row.order is not None:
        if len(set(row.order)) != len(row.order):
            raise BadRecord(f"field 'order': a model is named twice ({row.order})")
        return {m: float(i) for i, m in enumerate(row.order, 1)}
    assert row.ranks is not None
    if any(r < 1 for r in row.ranks.values()):
        raise BadRecord("field 'ranks': ranks start at 1 (best)")
    return row.ranks


def check_ranking(store: Store, prompt_ids: set[str], prompt_id: str,
                  ranks: dict[str, float]) -> None:
    """The prompt is loaded and the ranking names exactly the models that answered it."""
    if prompt_id not in prompt_ids:
        raise BadRecord(f"prompt {prompt_id!r} is not loaded (add its set with "
                        "`coig-writer eval prompts`)")
    answered = {g.model for g in store.evaluation.generations(prompt_id=prompt_id)}
    if unknown := sorted(set(ranks) - answered):
        raise BadRecord(f"no answer of {', '.join(map(repr, unknown))} to prompt {prompt_id!r} "
                        f"(its answers are from: {', '.join(sorted(answered)) or 'no model'})")
    if missing := sorted(answered - set(ranks)):
        raise BadRecord(f"the ranking leaves out {', '.join(map(repr, missing))}: rank every "
                        f"model that answered {prompt_id!r}")
    if len(ranks) < 2:
        raise BadRecord("a ranking needs 2 or more models")


def import_human_rankings(store: Store, path: Path) -> tuple[int, list[QuarantineEntry]]:
    """Rows: {"prompt_id", "rater", "ranks": {model: rank}} (1 best, equal ranks tie) or
    {"prompt_id", "rater", "order": [best, ..., worst]}; the models are the ones whose answers
    to the prompt are stored (all of them). Bad rows are quarantined with file:line."""
    added, bad = 0, []
    prompt_ids = {p.id for p in store.evaluation.eval_prompts()}
    for row in read_rows(path):
        try:
            if row.error or row.data is None:
                raise BadRecord(row.error or "empty row")
            d = validate(RankingRow, row.data)
            ranks, pid = _ranks(d), str(d.prompt_id)
            check_ranking(store, prompt_ids, pid, ranks)
            store.evaluation.put_judgment(Judgment(
                prompt_id=pid, kind="rank", models=sorted(ranks), ranks=ranks, source="human",
                judge=d.rater))
            added += 1
        except (ValueError, TypeError) as e:
            entry = QuarantineEntry(path=row.path, line=row.line, error=str(e), raw=row.raw)
            store.corpus.quarantine(entry)
            bad.append(entry)
    return added, bad
