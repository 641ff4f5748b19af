"""What every LLM job command shares: the cached backend with its accounting, and a recorded
run with a progress bar that turns executor and backend failures into clean exits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .common import build_or_fail, call_logger, fail, progress_bar

if TYPE_CHECKING:
    from ..executors.base import ItemResult
    from ..llm import BackendSpec, CachedBackend
    from ..store import Store


def open_llm(store: Store, backend: BackendSpec, prices: Path | None = None,
             log_calls: bool = False) -> CachedBackend:
    """The cached backend a spec names, costed with the `prices` table; `log_calls` prints a
    line per answer. A clean exit with the reason when it cannot be built."""
    from ..llm import Accounting, CachedBackend, LLMError, load_prices

    try:
        acc = Accounting(load_prices(prices))
    except (LLMError, OSError, ValueError) as e:
        raise fail(str(e)) from None
    llm = CachedBackend(build_or_fail(backend), store, accounting=acc)
    if log_calls:
        llm.listeners.append(call_logger())
    return llm


class BarWatch:
    """A run's progress on a rich progress bar: the total once the run knows its pending items,
    one step per finished item; `on_value` also sees each item's value (e.g. a triplet)."""

    def __init__(self, bar: Any, task: Any, on_value: Callable[[Any], None] | None = None):
        self.bar, self.task, self.on_value = bar, task, on_value

    def started(self, pending: int) -> None:
        self.bar.update(self.task, total=pending)

    def item(self, result: ItemResult) -> None:
        self.bar.advance(self.task)
        if self.on_value is not None and result.value is not None:
            self.on_value(result.value)


@contextmanager
def watching(label: str, on_value: Callable[[Any], None] | None = None) -> Iterator[BarWatch]:
    """A progress bar for the run inside; Ray that cannot start and backends that fail for good
    exit 2 with the reason."""
    from ..executors.ray_executor import RayUnavailable
    from ..llm import LLMError

    with progress_bar() as bar:
        try:
            yield BarWatch(bar, bar.add_task(label, total=None), on_value)
        except (RayUnavailable, LLMError) as e:
            raise fail(str(e)) from None
