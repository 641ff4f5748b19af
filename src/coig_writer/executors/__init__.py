"""How work items are scheduled, apart from what an item is (datatrove's split).

A `Job` knows its items: how to stream the pending ones, name them, and process one with the
store and cached LLM it was built with. Executors only schedule: `local` runs a bounded number
of items in flight in one asyncio loop; `ray` cuts the stream into shards that Ray workers run
with the same job code against per-shard stores, merged into the project store by the driver.
"""

from .base import Job, Outcome, job_from_spec, register_job

__all__ = ["Job", "Outcome", "job_from_spec", "register_job"]
