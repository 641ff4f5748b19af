"""`construct gate`: the gate over the rows of any triplets file (the released COIG-Writer
data, this tool's export, triplets written by people, another tool's output), without prompt
reconstruction or reasoning generation.

An executor job like construction: an item is one row (`GateItem`, JSON-able for Ray), its
verdict is stored as the stage result `gate` of item `gate:<id>` together with a hash of the
row's query, thought and answer, so a rerun skips rows already judged as they are now and
judges an edited row again; the LLM calls go through the cache. Rows become output rows
(`verdict_row`) in input order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..dataset.io import iter_triplet_rows
from ..executors.base import ItemResult
from ..llm import CachedBackend
from ..records import QuarantineEntry, StageResult, Triplet
from ..store import Store
from .calls import ItemContext, StageCaller
from .config import ConstructConfig
from .gate import Gate
from .verdict import Verdict

GATE_STAGE = "gate"


class GateItem(BaseModel):
    """One row to judge."""

    id: str
    query: str
    thought: str
    answer: str
    title: str = ""
    author: str = ""
    genre: str | None = None
    category: str | None = None
    origin: str = ""

    @property
    def input_hash(self) -> str:
        blob = "\x1f".join((self.query, self.thought, self.answer))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]

    @property
    def item_id(self) -> str:
        return f"gate:{self.id}"


def gate_key(config: ConstructConfig, caller: StageCaller) -> str:
    """What a stored verdict depends on besides its row: the model, the config and the
    templates (a verdict of another gate is not this gate's)."""
    blob = json.dumps({"model": caller.llm.model_id, "config": config.model_dump(mode="json"),
                       "templates": caller.template_hashes}, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def read_gate_items(path: Path) -> tuple[list[GateItem], list[QuarantineEntry]]:
    """The rows of a triplets file (through the one row reader), and the rows that cannot be
    judged (with file, line and why). A repeated id is quarantined, never judged twice."""
    items: list[GateItem] = []
    bad: list[QuarantineEntry] = []
    seen: set[str] = set()
    for p, line, trip, raw, err in iter_triplet_rows(path):
        if trip is None:
            bad.append(QuarantineEntry(path=p, line=line, error=err, raw=raw))
            continue
        if trip.id in seen:
            bad.append(QuarantineEntry(path=p, line=line, error=f"repeated id {trip.id!r}",
                                       raw=raw))
            continue
        seen.add(trip.id)
        items.append(GateItem(id=trip.id, query=trip.query, thought=trip.thought,
                              answer=trip.answer, title=trip.provenance.title or "",
                              author=trip.provenance.author or "", genre=trip.genre,
                              category=trip.category, origin=f"{p}:{line}"))
    return items, bad


def verdict_row(item: GateItem, v: dict[str, Any]) -> dict[str, Any]:
    """The output row of one judged input row (the documented `construct gate` format)."""
    return {"id": item.id, "status": v["status"], "reasons": v["reasons"],
            "checks": v["checks"] + v.get("review_checks", []), "scores": v["scores"],
            "expected_scores": v["expected_scores"], "score_mass": v["score_mass"],
            "score_rule": v["score_rule"], "check_results": v["check_results"]}


class GateJob:
    """The executor-facing job: items are `GateItem`s; each result is the stored verdict."""

    kind = "gate"

    def __init__(self, store: Store, llm: CachedBackend, config: ConstructConfig,
                 items: list[GateItem] | None = None, run_id: str | None = None,
                 keep: bool = False, others: list[str] | None = None):
        self.store = store
        self.config = config
        self.caller = StageCaller(store, llm, config)
        self.items = items or []
        self.gate = Gate(self.caller, others or self.others())
        self.gate_key = gate_key(config, self.caller)
        self.run_id = run_id
        self.keep = keep  # also store each row as a triplet for the review app

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "config": self.config.model_dump(), "run_id": self.run_id,
                "keep": self.keep, "others": list(self.gate.others)}

    def others(self) -> list[str]:
        """Texts of the file's other rows, for the checks that compare a reasoning with what
        it would share with any text (a bounded sample)."""
        n = self.config.max_article_chars  # as the checks see each text (ItemContext.article)
        return list(dict.fromkeys(i.answer[:n] for i in self.items))[:64]

    def verdict(self, item: GateItem) -> dict[str, Any] | None:
        """The stored verdict of `item` as it is now, by this gate (None: not judged, judged
        before an edit, or by another model, config or templates)."""
        for r in self.store.construct.stages_for(item.item_id):
            if (r.stage == GATE_STAGE and r.output.get("input_hash") == item.input_hash
                    and r.output.get("gate_key") == self.gate_key):
                return r.output
        return None

    def pending(self, limit: int | None = None) -> Iterator[GateItem]:
        todo = (i for i in self.items if self.verdict(i) is None)
        for n, item in enumerate(todo):
            if limit is not None and n >= limit:
                return
            yield item

    def count_pending(self, limit: int | None = None) -> int:
        return sum(1 for _ in self.pending(limit))

    def item_id(self, item: GateItem | dict[str, Any]) -> str:
        return (item if isinstance(item, GateItem) else GateItem.model_validate(item)).item_id

    def still_pending(self, item: GateItem | dict[str, Any]) -> bool:
        item = item if isinstance(item, GateItem) else GateItem.model_validate(item)
        return self.verdict(item) is None

    async def judge(self, item: GateItem) -> Verdict:
        ctx = ItemContext(item_id=item.item_id, run_id=self.run_id or "gate",
                          article=item.answer[:self.config.max_article_chars], title=item.title,
                          author=item.author, genre=item.genre)
        return await self.gate.judge(ctx, 0, item.query, item.thought)

    async def process(self, item: GateItem | dict[str, Any]) -> ItemResult:
        item = item if isinstance(item, GateItem) else GateItem.model_validate(item)
        v = await self.judge(item)
        out = {**v.as_dict(), "input_hash": item.input_hash, "gate_key": self.gate_key}
        tpl = self.caller.templates["score"]
        self.store.construct.put_stage(StageResult(
            item_id=item.item_id, stage=GATE_STAGE, round=0, output=out, template=tpl.ref,
            template_hash=tpl.sha256, model=self.caller.llm.model_id, run_id=self.run_id))
        if self.keep:
            self.store.construct.put_triplet(self.triplet(item, v))
        return ItemResult(item.item_id, v.status, out)

    def triplet(self, item: GateItem, v: Verdict) -> Triplet:
        """The row as a stored triplet carrying the gate's verdict (`--store`)."""
        t = Triplet(id=item.id, query=item.query, thought=item.thought, answer=item.answer,
                    genre=item.genre, category=item.category, status=v.status,
                    pipeline_status=v.status, reasons=v.reasons, validation=v.validation,
                    scores=v.scores, expected_scores=v.expected, score_mass=v.mass,
                    score_confidence=v.confidence,
                    score_rule=v.score_rule, checks=v.checks + v.review_checks,
                    model=self.caller.llm.model_id, templates=self.caller.template_hashes,
                    run_id=self.run_id)
        t.provenance.title, t.provenance.author = item.title or None, item.author or None
        t.provenance.origin = item.origin
        return t


def gate_job(spec: dict[str, Any], store: Store, llm: CachedBackend) -> GateJob:
    """Rebuild the job on a worker (`executors.base.register_job`)."""
    return GateJob(store, llm, ConstructConfig.model_validate(spec["config"]),
                   run_id=spec.get("run_id"), keep=spec.get("keep", False),
                   others=spec.get("others"))
