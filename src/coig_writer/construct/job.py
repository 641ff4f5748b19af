"""Construction as an executor job: one item is one source text."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..executors.base import ItemResult
from ..llm import CachedBackend
from ..records import SourceText
from ..store import Store
from .config import ConstructConfig
from .pipeline import ConstructPipeline, triplet_id


class ConstructJob:
    kind = "construct"

    def __init__(self, pipeline: ConstructPipeline, redo: bool = False):
        self.pipeline = pipeline
        self.redo = redo

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "config": self.pipeline.config.model_dump(),
                "run_id": self.pipeline.run_id}

    def pending(self, limit: int | None = None) -> Iterator[SourceText]:
        return self.pipeline.pending(limit, self.redo)

    def count_pending(self, limit: int | None = None) -> int:
        return self.pipeline.count_pending(limit, self.redo)

    def item_id(self, item: SourceText) -> str:
        return item.id

    def still_pending(self, item: SourceText) -> bool:
        """No triplet made meanwhile (by another process on the same store)."""
        return self.redo or not self.pipeline.store.construct.has_triplet(triplet_id(item.id))

    async def process(self, item: SourceText) -> ItemResult:
        run_id = self.pipeline.run_id or "adhoc"
        trip = await self.pipeline.process(item, run_id)
        return ItemResult(item.id, trip.status, trip)


def construct_job(spec: dict[str, Any], store: Store, llm: CachedBackend) -> ConstructJob:
    pipe = ConstructPipeline(store, llm, ConstructConfig.model_validate(spec["config"]))
    pipe.run_id = spec.get("run_id")
    return ConstructJob(pipe)
