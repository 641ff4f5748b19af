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
    stopped: str = ""  # why the run ended before its items did (every endpoint down)

    def add(self, other: Outcome) -> None:
        self.labels.update(other.labels)
        self.errors.update(other.errors)
        self.done += other.done
        self.stopped = self.stopped or other.stopped


class Job(Protocol):
    """A kind of work over items. `spec()` is JSON-able and, with `job_from_spec`, rebuilds the
    job on a worker around the worker's own store and cached backend."""

    kind: str

    def spec(self) -> dict[str, Any]: ...

    def pending(self, limit: int | None = None) -> Iterator[Any]: ...

    def count_pending(self, limit: int | None = None) -> int: ...

    def item_id(self, item: Any) -> str: ...

    async def process(self, item: Any) -> ItemResult: ...


def shard_context(job: Job, items: list[Any]) -> Any:
    """What a worker's shard store needs besides the items (driver side); None by default.
    A job provides `shard_context(items)` and `load_context(ctx)` when its items read other
    records (e.g. a judge task reads the prompt and the answers it judges)."""
    fn = getattr(job, "shard_context", None)
    return fn(items) if fn else None


def load_context(job: Job, ctx: Any) -> None:
    fn = getattr(job, "load_context", None)
    if fn and ctx is not None:
        fn(ctx)


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
register_job("gate", "coig_writer.construct.gate_job:gate_job")
register_job("audit_gate", "coig_writer.construct.audit:audit_job")
register_job("generate", "coig_writer.evaluate.generate:generate_job")
register_job("judge", "coig_writer.evaluate.judge:judge_job")
