"""Inference endpoints and the router that spreads calls over them.

Each call goes to the least-loaded healthy endpoint (in-flight calls over weight, within the
endpoint's own concurrency cap). Calls that name an affinity key (the work item) go back to the
endpoint that served the key's last call, where its prompt prefix is cached, unless that endpoint
is full, down, or more than `affinity_slack` calls busier than the least-loaded one.
An endpoint that fails `max_failures` times in a row is taken
out for a cool-down that doubles up to `max_cooldown_s`; after it one probe call is let through,
and a success brings the endpoint back. Optional client-side rate limits (requests and tokens
per minute) suit hosted APIs.

Giving up (`FailurePolicy`): when *every* endpoint has failed `give_up_failures` attempts in a
row, or has been failing (no success since its first failure) for `give_up_after_s`, the router
gives up: every waiting and later `acquire` raises `EndpointsDown` with the last error of each
endpoint, so a run ends instead of probing a dead server forever (its items stay pending).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, PrivateAttr, field_validator

from .base import LLMError


class FailurePolicy(BaseModel):
    """When to stop calling servers that keep failing (see the module docstring)."""

    give_up_failures: int | None = Field(10, ge=1, description="consecutive failed attempts "
                                         "on every endpoint (None: no limit)")
    give_up_after_s: float | None = Field(300.0, gt=0, description="every endpoint failing "
                                          "this long (None: no limit)")
    timeout_s: float = Field(300.0, gt=0, description="one call's limit, answer included")
    retry_after_cap_s: float = Field(60.0, ge=0, description="longest Retry-After obeyed; a "
                                     "longer one counts as a failure of the endpoint")

    @field_validator("give_up_failures", "give_up_after_s", mode="before")
    @classmethod
    def _zero_is_none(cls, v: Any) -> Any:
        return None if v == 0 else v


class EndpointsDown(LLMError):
    """Every endpoint failed past the policy's limits; `errors` holds each one's last error."""

    def __init__(self, errors: dict[str, str], why: str):
        self.errors = errors
        detail = "; ".join(e if e.startswith(url) else f"{url}: {e}" for url, e in errors.items())
        super().__init__(f"giving up: every endpoint {why} (last errors: {detail})")


class Endpoint(BaseModel):
    """One OpenAI-compatible server. `model` is the name it serves (defaults to the backend's
    model); the cache key always names the backend's model, never the endpoint."""

    url: str
    model: str | None = None
    api_key_env: str | None = Field(None, description="env var holding the key (never stored)")
    max_concurrency: int | None = Field(None, description="calls in flight on this server "
                                        "(default: only the backend's --concurrency bounds it)")
    weight: float = 1.0
    rpm: float | None = Field(None, description="client-side requests per minute")
    tpm: float | None = Field(None, description="client-side tokens per minute (estimated)")
    json_schema: bool = Field(True, description="send response_format json_schema when asked")
    logprobs: bool = Field(True, description="send logprobs/top_logprobs when a stage asks "
                           "(turned off when the server refuses them)")
    extra_body: dict[str, Any] = Field(default_factory=dict)

    _inflight: int = PrivateAttr(0)
    _failures: int = PrivateAttr(0)
    _down_until: float = PrivateAttr(0.0)
    _cooldown: float = PrivateAttr(0.0)
    _probing: bool = PrivateAttr(False)
    _calls: int = PrivateAttr(0)
    _errors: int = PrivateAttr(0)
    _streak: int = PrivateAttr(0)  # failed attempts since the last success
    _failing_since: float = PrivateAttr(0.0)
    _last_error: str = PrivateAttr("")
    _req_bucket: TokenBucket | None = PrivateAttr(None)
    _tok_bucket: TokenBucket | None = PrivateAttr(None)

    def model_post_init(self, _: Any) -> None:
        self.url = self.url.rstrip("/")
        if self.rpm:
            self._req_bucket = TokenBucket(self.rpm / 60.0, max(1.0, self.rpm / 60.0))
        if self.tpm:
            self._tok_bucket = TokenBucket(self.tpm / 60.0, self.tpm / 60.0 * 5)

    @property
    def api_key(self) -> str:
        name = self.api_key_env or "OPENAI_API_KEY"
        return os.environ.get(name) or "none"

    def available(self, now: float) -> bool:
        if self.max_concurrency is not None and self._inflight >= self.max_concurrency:
            return False
        if self._down_until > now:
            return False
        # past the cool-down: exactly one probe at a time until a success
        return not (self._cooldown and self._probing)

    def stats(self) -> dict[str, Any]:
        return {"url": self.url, "calls": self._calls, "errors": self._errors,
                "inflight": self._inflight, "down": self._down_until > time.monotonic(),
                "failing": self._streak, "last_error": self._last_error}


class TokenBucket:
    """Refills `rate` tokens per second up to `burst`; `take` waits until enough are there."""

    def __init__(self, rate: float, burst: float):
        self.rate, self.burst = rate, burst
        self.tokens, self.t = burst, time.monotonic()

    async def take(self, n: float) -> None:
        n = min(n, self.burst)
        while True:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.t) * self.rate)
            self.t = now
            if self.tokens >= n:
                self.tokens -= n
                return
            await asyncio.sleep((n - self.tokens) / self.rate)


class Router:
    """Chooses an endpoint per call and tracks health."""

    AFFINITY_KEYS = 8192  # most recent items remembered

    def __init__(self, endpoints: Iterable[Endpoint], *, max_total: int | None = None,
                 max_failures: int = 3, base_cooldown_s: float = 2.0,
                 max_cooldown_s: float = 60.0, policy: FailurePolicy | None = None,
                 affinity_slack: int = 2):
        self.endpoints = list(endpoints)
        self.affinity_slack = affinity_slack
        self._affinity: OrderedDict[str, Endpoint] = OrderedDict()
        self.max_total = max_total
        self.inflight = 0
        if not self.endpoints:
            raise LLMError("no endpoints configured")
        self.max_failures = max_failures
        self.base_cooldown_s = base_cooldown_s
        self.max_cooldown_s = max_cooldown_s
        self.policy = policy or FailurePolicy()
        self.gave_up: EndpointsDown | None = None
        self._cond: asyncio.Condition | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def _changed(self) -> asyncio.Condition:
        """The condition of the running loop (a backend may serve several asyncio.run calls)."""
        loop = asyncio.get_running_loop()
        if self._cond is None or self._loop is not loop:
            self._cond, self._loop = asyncio.Condition(), loop
        return self._cond

    def _given_up(self, now: float) -> EndpointsDown | None:
        """Set (once) and return the give-up error when every endpoint is past the limits."""
        if self.gave_up is None:
            n, t = self.policy.give_up_failures, self.policy.give_up_after_s
            if n is not None and all(e._streak >= n for e in self.endpoints):
                why = f"failed {n} attempts in a row"
            elif t is not None and all(e._streak and now - e._failing_since >= t
                                       for e in self.endpoints):
                why = f"has been failing for {t:g} s"
            else:
                return None
            self.gave_up = EndpointsDown({e.url: e._last_error for e in self.endpoints}, why)
        return self.gave_up

    def _give_up_in(self, now: float) -> float | None:
        """Seconds until the time limit would make the router give up (None: not running)."""
        t = self.policy.give_up_after_s
        if t is None or not all(e._streak for e in self.endpoints):
            return None
        return max(0.0, max(e._failing_since for e in self.endpoints) + t - now)


    def _pick(self, ready: list[Endpoint], affinity: str | None) -> Endpoint:
        """The least-loaded ready endpoint, or the one holding `affinity`'s prefix if it is
        ready and not much busier."""
        least = min(ready, key=lambda e: (e._inflight + 1) / e.weight)
        if affinity is None or len(self.endpoints) == 1:
            return least
        pref = self._affinity.get(affinity)
        if pref is not None and pref in ready and \
                pref._inflight / pref.weight <= least._inflight / least.weight + self.affinity_slack:
            least = pref
        self._affinity[affinity] = least
        self._affinity.move_to_end(affinity)
        if len(self._affinity) > self.AFFINITY_KEYS:
            self._affinity.popitem(last=False)
        return least

    async def acquire(self, est_tokens: int = 0, affinity: str | None = None) -> Endpoint:
        async with self._changed:
            while True:
                now = time.monotonic()
                if down := self._given_up(now):
                    raise down
                full = self.max_total is not None and self.inflight >= self.max_total
                ready = [] if full else [e for e in self.endpoints if e.available(now)]
                if ready:
                    ep = self._pick(ready, affinity)
                    ep._inflight += 1
                    ep._calls += 1
                    self.inflight += 1
                    if ep._cooldown:
                        ep._probing = True
                    break
                wake = [] if full else [e._down_until - now for e in self.endpoints
                                        if e._down_until > now]
                if (limit := self._give_up_in(now)) is not None:
                    wake.append(limit + 0.01)
                try:
                    # a bounded wait: a notification lost to a timed-out waiter costs 1 s, not a hang
                    await asyncio.wait_for(self._changed.wait(), min(wake) if wake else 1.0)
                except TimeoutError:
                    pass
        if ep._req_bucket:
            await ep._req_bucket.take(1)
        if ep._tok_bucket and est_tokens:
            await ep._tok_bucket.take(est_tokens)
        return ep

    async def release(self, ep: Endpoint, ok: bool, error: str = "",
                      throttled: bool = False, wait_s: float = 0.0) -> None:
        """Return `ep` after a call. `throttled`: a refusal the server asked to wait out (429
        with an acceptable Retry-After, `wait_s`) or a cancelled call: the endpoint rests
        `wait_s` but its health is unchanged (it never counts towards giving up)."""
        async with self._changed:
            ep._inflight -= 1
            self.inflight -= 1
            ep._probing = False
            was_out = bool(ep._cooldown)
            if throttled:
                ep._down_until = max(ep._down_until, time.monotonic() + wait_s)
                ep._last_error = error or ep._last_error
            elif ok:
                ep._failures, ep._cooldown, ep._down_until = 0, 0.0, 0.0
                ep._streak = 0
            else:
                ep._errors += 1
                ep._failures += 1
                if not ep._streak:
                    ep._failing_since = time.monotonic()
                ep._streak += 1
                ep._last_error = error or ep._last_error or "failed"
                if ep._failures >= self.max_failures:
                    ep._cooldown = min(self.max_cooldown_s,
                                       (ep._cooldown * 2) or self.base_cooldown_s)
                    ep._down_until = time.monotonic() + ep._cooldown
            if was_out != bool(ep._cooldown) or self._given_up(time.monotonic()):
                # health changed: let every waiter look again
                self._changed.notify_all()
            else:  # one slot freed: one waiter can take it (no thundering herd)
                self._changed.notify(1)

    def stats(self) -> list[dict[str, Any]]:
        return [e.stats() for e in self.endpoints]


def load_endpoints(path: str | Path) -> list[Endpoint]:
    """Read an endpoints YAML: a list of {url, model?, api_key_env?, max_concurrency?, weight?,
    rpm?, tpm?, json_schema?, extra_body?} (or {endpoints: [...]})."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text("utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise LLMError(f"{p}: cannot read endpoints file: {e}") from None
    if isinstance(data, dict):
        data = data.get("endpoints")
    if not isinstance(data, list) or not data:
        raise LLMError(f"{p}: expected a list of endpoints (url, model, ...)")
    out = []
    for i, row in enumerate(data, 1):
        if isinstance(row, str):
            row = {"url": row}
        try:
            out.append(Endpoint.model_validate(row))
        except ValueError as e:
            raise LLMError(f"{p}: endpoint {i}: {e}") from None
    return out
