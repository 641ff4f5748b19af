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
  disk on one machine, a shared filesystem on a cluster (as datatrove's logging dir). It is
  checked writable before Ray starts.

Lifetime: a worker stops sending requests as soon as its driver is gone (it watches the driver's
process on one machine, the driver-owned progress actor on a cluster). A local instance the
driver started is shut down completely at the end, and by a reaper process when the driver is
killed (see `ray_local`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from ..llm import Accounting, BackendSpec, LLMError
from ..store import Store
from .base import ItemResult, Job, Outcome, shard_context
from .leasing import ItemLeases, still_pending
from .spec import ExecutorSpec


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


def init_ray(address: str | None, workers: int, state_dir: Path) -> None:
    """Join the cluster at `address`, or start a local instance of `workers` CPUs bound to
    loopback (it serves this machine only; recorded in `state_dir` for a complete shutdown)."""
    ray = _ray()
    try:
        if address:
            if address != "auto":
                _check_reachable(address)
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        else:
            from .ray_local import start_local

            start_local(ray, workers, state_dir)
    except RayUnavailable:
        raise
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise RayUnavailable(f"cannot reach Ray at {address or 'a new local instance'}: "
                             f"{e}") from None


def _batched(items: Iterable[Any], n: int) -> Iterator[list[Any]]:
    it = iter(items)
    while chunk := list(islice(it, n)):
        yield chunk


def check_writable_dir(path: Path, what: str) -> None:
    """Create `path` if needed and prove a file can be written there; RayUnavailable naming
    the path otherwise (raised before any Ray process or server starts)."""
    probe = path / f".write-test-{os.getpid()}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise RayUnavailable(f"cannot write the {what} {path}: {e.strerror or e}") from None


class DriverGone(RuntimeError):
    """The driver that submitted this shard is gone: the worker stops sending requests."""


def driver_info(progress: Any) -> dict[str, Any]:
    import psutil

    me = psutil.Process()
    return {"host": socket.gethostname(), "pid": me.pid, "created": me.create_time(),
            "progress": progress}


def driver_alive(driver: dict[str, Any] | None) -> bool:
    """On the driver's machine: its process (pid and start time); elsewhere: its progress
    actor, which Ray ends with the driver that owns it."""
    if not driver:
        return True
    if driver["host"] == socket.gethostname():
        import psutil

        try:
            return abs(psutil.Process(driver["pid"]).create_time() - driver["created"]) < 1.0
        except psutil.Error:
            return False
    try:
        _ray().get(driver["progress"].ping.remote(), timeout=10)
        return True
    except Exception:  # noqa: BLE001 - an owner-died or actor-died error of any kind
        return False


async def _until_driver_gone(driver: dict[str, Any] | None, every_s: float = 0.5) -> None:
    while await asyncio.to_thread(driver_alive, driver):
        await asyncio.sleep(every_s)


@dataclass
class Shard:
    """One shard's work: its items, the cached answers they may replay, the shard store's path
    and what the job's items read besides (`shard_context`)."""

    items: list[Any]
    cache_rows: list[tuple[Any, ...]]
    path: str
    context: Any = None


def run_shard(job_spec: dict[str, Any], backend: dict[str, Any], shard: Shard, concurrency: int,
              progress: Any = None, driver: dict[str, Any] | None = None) -> dict[str, Any]:
    """Process one shard on a worker (`backend`: a `BackendSpec` as JSON); results stay in the
    shard store for the driver. The shard is abandoned (no further request sent) as soon as
    the driver is gone."""
    from ..llm import BackendSpec, CachedBackend, make_backend
    from .base import job_from_spec, load_context
    from .local import run_local

    store = Store(shard.path)
    try:
        store.cache.put_cache_rows(shard.cache_rows)
        llm = CachedBackend(make_backend(BackendSpec.model_validate(backend)), store)
        job = job_from_spec(job_spec, store, llm)
        load_context(job, shard.context)

        def tick(res: Any) -> None:
            if progress is not None:
                progress.tick.remote(res.label)

        async def go() -> Outcome:
            work = asyncio.ensure_future(run_local(job, shard.items, concurrency=concurrency,
                                                   on_item=tick))
            watch = asyncio.ensure_future(_until_driver_gone(driver))
            try:
                await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
                if not work.done():  # the driver is gone: stop sending, keep what is stored
                    work.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await work
                    raise DriverGone("the driver is gone; the shard stops")
                return work.result()
            finally:
                watch.cancel()
                await llm.aclose()

        out = asyncio.run(go())
        return {"labels": dict(out.labels), "errors": out.errors, "done": out.done,
                "stopped": out.stopped, "accounting": llm.accounting.summary(with_latencies=True)}
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

    def ping(self) -> bool:
        return True


def _claimed(job: Job, chunk: list[Any], leases: ItemLeases) -> list[Any]:
    """The items of `chunk` this process could claim and that are still pending."""
    keep = []
    for x in chunk:
        key = job.item_id(x)
        if not leases.claim(key):
            continue
        if still_pending(job, x):
            keep.append(x)
        else:
            leases.release(key)
    return keep


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


def run_ray(store: Store, job: Job, items: Iterable[Any], executor: ExecutorSpec,
            backend: BackendSpec, *, accounting: Accounting | None = None,
            on_item: Callable[[ItemResult], None] | None = None) -> Outcome:
    """Run `job` over `items` on Ray: `executor.workers` shards in flight, each with
    `executor.concurrency` items in flight; every item is claimed first (`ItemLeases`), so
    several processes on one store share the items; merges every finished shard into `store`."""
    ray = _ray()
    if backend.kind == "local":
        raise LLMError("the Ray executor needs --backend openai: serve the model once "
                       "(`coig-writer models serve`, vLLM, ...) and pass its --base-url; an "
                       "embedded model per worker would compete for the same cores")
    shard_dir = Path(f"{store.path}.shards")
    check_writable_dir(shard_dir, "Ray shard folder")
    recover_shards(store, shard_dir, job.kind)
    started_here = False
    if not ray.is_initialized():
        init_ray(executor.address, executor.workers, shard_dir)
        started_here = True
    remote = ray.remote(num_cpus=1, max_retries=3, retry_exceptions=False)(run_shard)
    progress = ray.remote(num_cpus=0)(_Progress).remote()
    driver = driver_info(progress)
    spec = backend.to_json()
    leases = ItemLeases(store, job.kind)
    out = Outcome()
    inflight: dict[Any, Path] = {}
    claimed: dict[Any, list[str]] = {}  # shard -> the item ids it holds leases on
    tag = uuid.uuid4().hex[:8]

    def drain() -> None:
        """Merge whichever shards finished within half a second; pass on progress."""
        ready = ray.wait(list(inflight), num_returns=1, timeout=0.5)[0] if inflight else []
        leases.renew_due()
        for ref in ready:
            path = inflight.pop(ref)
            res = ray.get(ref)  # a shard that failed for good raises here: nothing was merged
            store.merge_from(path)
            _remove(path)
            for key in claimed.pop(ref, []):
                leases.release(key)
            out.add(Outcome(labels=Counter(res["labels"]), errors=res["errors"],
                            done=res["done"], stopped=res.get("stopped", "")))
            if accounting is not None:
                accounting.merge(res["accounting"])
        if on_item:
            for label, n in ray.get(progress.take.remote()).items():
                for _ in range(n):
                    on_item(ItemResult("", label))

    try:
        for i, chunk in enumerate(_batched(items, executor.shard_size)):
            while len(inflight) >= 2 * executor.workers and not out.stopped:
                drain()
            if out.stopped:  # every endpoint is down: no new shard (the rest stays pending)
                break
            chunk = _claimed(job, chunk, leases)  # items another process works on (or finished)
            if not chunk:
                continue
            ids = [job.item_id(x) for x in chunk]
            shard = Shard(chunk, store.cache.cache_rows_for_items(ids),
                          str(shard_dir / f"{job.kind}-{tag}-{i:06d}.sqlite"),
                          shard_context(job, chunk))
            ref = remote.remote(job.spec(), spec, shard, executor.concurrency, progress, driver)
            inflight[ref] = Path(shard.path)
            claimed[ref] = ids
        while inflight:
            drain()
        drain()  # the last progress ticks
    finally:
        leases.close()
        if started_here:
            from .ray_local import stop_local

            stop_local(ray, shard_dir)
    return out
