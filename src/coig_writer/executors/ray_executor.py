"""The Ray executor: the pending items cut into shards that Ray workers process.

Checkpointing (why no completed call is ever sent twice, and nothing is duplicated):
- Each shard runs on a worker with the same job code as the local executor, against its own
  SQLite *shard store* in `shard_dir`: every LLM answer is committed there before the item moves
  on. The driver seeds the shard store with the cached answers of the shard's items (so work
  done by earlier runs is replayed, not re-sent).
- When a shard finishes, the driver merges its store into the project store in one transaction
  (cache rows kept, result rows replaced by key: idempotent) and deletes the shard file. The
  project store has one writer: the driver.
- A worker killed mid-shard: Ray runs the task again (`max_retries`), it reopens the same shard
  file and replays what was done. The driver killed: the next run first merges every shard file
  left in `shard_dir`, then plans the remaining items.
- `shard_dir` must be reachable by the driver and every worker under the same path: the local
  disk on one machine, a shared filesystem on a cluster (as datatrove's logging dir).
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from ..llm import Accounting, LLMError
from ..store import Store
from .base import Job, Outcome, shard_context


class RayUnavailable(RuntimeError):
    pass


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayUnavailable("the Ray executor needs Ray: pip install 'coig-writer[ray]'") from None
    return ray


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on a host:port nobody listens on (Ray itself would retry for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise RayUnavailable(f"cannot reach Ray at {address}: {e}; start the cluster with "
                             "`ray start --head` or leave --ray-address out for a local "
                             "instance") from None


def init_ray(address: str | None, workers: int) -> None:
    """Join the cluster at `address`, or start a local instance of `workers` CPUs bound to
    loopback (it serves this machine only)."""
    ray = _ray()
    try:
        if address:
            if address != "auto":
                _check_reachable(address)
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
                     _node_ip_address="127.0.0.1")
    except RayUnavailable:
        raise
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise RayUnavailable(f"cannot reach Ray at {address or 'a new local instance'}: "
                             f"{e}") from None


def _batched(items: Iterable[Any], n: int) -> Iterator[list[Any]]:
    it = iter(items)
    while chunk := list(islice(it, n)):
        yield chunk


def run_shard(job_spec: dict[str, Any], backend_spec: dict[str, Any], items: list[Any],
              cache_rows: list[tuple[Any, ...]], shard_path: str, concurrency: int,
              progress: Any = None, context: Any = None) -> dict[str, Any]:
    """Process one shard on a worker; results stay in the shard store for the driver."""
    from ..llm import CachedBackend, make_backend
    from .base import job_from_spec, load_context
    from .local import run_local

    store = Store(shard_path)
    try:
        store.cache.put_cache_rows(cache_rows)
        backend = make_backend(**backend_spec)
        llm = CachedBackend(backend, store)
        job = job_from_spec(job_spec, store, llm)
        load_context(job, context)

        def tick(res: Any) -> None:
            if progress is not None:
                progress.tick.remote(res.label)

        async def go() -> Outcome:
            try:
                return await run_local(job, items, concurrency=concurrency, on_item=tick)
            finally:
                await llm.aclose()

        out = asyncio.run(go())
        return {"labels": dict(out.labels), "errors": out.errors, "done": out.done,
                "accounting": llm.accounting.summary(with_latencies=True)}
    finally:
        store.close()


class _Progress:
    """A tiny actor the workers tick per item, so the driver shows progress across workers."""

    def __init__(self) -> None:
        self.labels: dict[str, int] = {}

    def tick(self, label: str) -> None:
        self.labels[label] = self.labels.get(label, 0) + 1

    def take(self) -> dict[str, int]:
        out, self.labels = self.labels, {}
        return out


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def recover_shards(store: Store, shard_dir: Path, kind: str) -> int:
    """Merge shard stores left by a killed run into the project store; returns how many."""
    n = 0
    for f in sorted(shard_dir.glob(f"{kind}-*.sqlite")):
        store.merge_from(f)
        _remove(f)
        n += 1
    return n


def run_ray(store: Store, job: Job, backend_spec: dict[str, Any], items: Iterable[Any], *,
            workers: int = 2, shard_size: int = 32, concurrency: int = 16,
            shard_dir: Path | None = None, address: str | None = None,
            accounting: Accounting | None = None,
            on_progress: Callable[[str, int], None] | None = None) -> Outcome:
    """Run `job` over `items` on Ray with `workers` shards in flight (each with `concurrency`
    items in flight); merges every finished shard into `store`."""
    ray = _ray()
    if backend_spec.get("kind") == "local":
        raise LLMError("the Ray executor needs --backend openai: serve the model once "
                       "(`coig-writer models serve`, vLLM, ...) and pass its --base-url; an "
                       "embedded model per worker would compete for the same cores")
    shard_dir = shard_dir or Path(f"{store.path}.shards")
    shard_dir.mkdir(parents=True, exist_ok=True)
    recover_shards(store, shard_dir, job.kind)
    started_here = False
    if not ray.is_initialized():
        init_ray(address, workers)
        started_here = True
    remote = ray.remote(num_cpus=1, max_retries=3, retry_exceptions=False)(run_shard)
    progress = ray.remote(num_cpus=0)(_Progress).remote()
    out = Outcome()
    inflight: dict[Any, Path] = {}
    tag = uuid.uuid4().hex[:8]

    def drain() -> None:
        """Merge whichever shards finished within half a second; pass on progress."""
        ready = ray.wait(list(inflight), num_returns=1, timeout=0.5)[0] if inflight else []
        for ref in ready:
            path = inflight.pop(ref)
            res = ray.get(ref)  # a shard that failed for good raises here: nothing was merged
            store.merge_from(path)
            _remove(path)
            out.add(Outcome(labels=Counter(res["labels"]), errors=res["errors"],
                            done=res["done"]))
            if accounting is not None:
                accounting.merge(res["accounting"])
        if on_progress:
            for label, n in ray.get(progress.take.remote()).items():
                on_progress(label, n)

    try:
        for i, chunk in enumerate(_batched(items, shard_size)):
            while len(inflight) >= 2 * workers:
                drain()
            ids = [job.item_id(x) for x in chunk]
            path = shard_dir / f"{job.kind}-{tag}-{i:06d}.sqlite"
            ref = remote.remote(job.spec(), backend_spec, chunk, store.cache.cache_rows_for_items(ids),
                                str(path), concurrency, progress, shard_context(job, chunk))
            inflight[ref] = path
        while inflight:
            drain()
        drain()  # the last progress ticks
    finally:
        if started_here:
            ray.shutdown()
    return out

