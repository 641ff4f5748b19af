"""The job interface executors schedule, and the outcome they report."""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..llm import CachedBackend
from ..store import Store


@dataclass
class ItemResult:
    """What processing one item gave: a label to count (e.g. a triplet status) and a value."""

    item_id: str
    label: str
    value: Any = None


@dataclass
class Outcome:
    labels: Counter[str] = field(default_factory=Counter)
    errors: dict[str, str] = field(default_factory=dict)
    done: int = 0

    def add(self, other: Outcome) -> None:
        self.labels.update(other.labels)
        self.errors.update(other.errors)
        self.done += other.done


class Job(Protocol):
    """A kind of work over items. `spec()` is JSON-able and, with `job_from_spec`, rebuilds the
    job on a worker around the worker's own store and cached backend."""

    kind: str

    def spec(self) -> dict[str, Any]: ...

    def pending(self, limit: int | None = None) -> Iterator[Any]: ...

    def count_pending(self, limit: int | None = None) -> int: ...

    def item_id(self, item: Any) -> str: ...

    async def process(self, item: Any) -> ItemResult: ...


_JOBS: dict[str, str] = {}


def register_job(kind: str, factory: str) -> None:
    """Name the factory (`module:function(spec, store, llm) -> Job`) that rebuilds `kind`."""
    _JOBS[kind] = factory


def job_from_spec(spec: dict[str, Any], store: Store, llm: CachedBackend) -> Job:
    kind = spec["kind"]
    if kind not in _JOBS:
        raise KeyError(f"unknown job kind {kind!r}; registered: {sorted(_JOBS)}")
    module, func = _JOBS[kind].split(":")
    return getattr(importlib.import_module(module), func)(spec, store, llm)


register_job("construct", "coig_writer.construct.job:construct_job")
register_job("generate", "coig_writer.evaluate.generate:generate_job")
