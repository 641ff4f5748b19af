"""Item leases for executors: a process claims each item before it works on it and renews its
claims while it works, so several processes on one store share the items (see store.leases)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..store import Store
from ..store.leases import holder_name

LEASE_TTL_S = 60.0


class ItemLeases:
    """This process's claims on the items of one job kind."""

    def __init__(self, store: Store, kind: str, ttl_s: float = LEASE_TTL_S):
        self.repo, self.kind, self.ttl_s = store.leases, kind, ttl_s
        self.holder = holder_name()
        self.skipped = 0  # items another process was working on
        self._renewed = time.monotonic()

    def claim(self, item_id: str) -> bool:
        ok = self.repo.claim(self.kind, item_id, self.holder, self.ttl_s)
        self.skipped += not ok
        return ok

    def release(self, item_id: str) -> None:
        self.repo.release(self.kind, item_id, self.holder)

    def renew_due(self) -> None:
        """Renew every claim when a third of the lease time has passed (cheap to call often)."""
        if time.monotonic() - self._renewed >= self.ttl_s / 3:
            self.repo.renew(self.holder, self.ttl_s)
            self._renewed = time.monotonic()

    async def heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_s / 3)
            self.renew_due()

    def close(self) -> None:
        self.repo.release_all(self.holder)


def still_pending(job: Any, item: Any) -> bool:
    """The job's own check that an item was not finished meanwhile (by another process)."""
    fn = getattr(job, "still_pending", None)
    return fn(item) if fn else True
