"""`ExecutorSpec`: where and how a job's items run, as one typed value."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class ExecutorSpec(BaseModel):
    """`local`: `concurrency` items in flight in this process. `ray`: shards of `shard_size`
    items, `workers` shards at once, `concurrency` items in flight per worker, on the cluster at
    `address` (default: a local instance). `batch_out`/`batch_in` turn the run into a Batch API
    wave (whatever `kind` says): load the answers of `batch_in`, write the next requests into
    `batch_out` (default: `batch_in`'s folder)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["local", "ray"] = "local"
    concurrency: int = 4
    workers: int = 2
    shard_size: int = 32
    address: str | None = None
    batch_out: Path | None = None
    batch_in: Path | None = None

    @property
    def batch(self) -> bool:
        return self.batch_out is not None or self.batch_in is not None

    @property
    def name(self) -> str:
        """What the run record calls it: local, ray or batch."""
        return "batch" if self.batch else self.kind

    def record(self) -> dict[str, Any]:
        """The settings a run record keeps for this executor."""
        if self.batch:
            return {"batch_in": str(self.batch_in or "")}
        if self.kind == "ray":
            return {"workers": self.workers, "shard_size": self.shard_size,
                    "concurrency": self.concurrency, "ray_address": self.address}
        return {"concurrency": self.concurrency}
