"""Batch API files: the next request of every pending item out, the answers back in.

`write_wave` turns the requests a deferred run collected into an OpenAI Batch API input file
(one `{"custom_id", "method", "url", "body"}` line per request; vLLM's `run_batch` reads the same
format) and remembers each request in the store. `load_results` reads a Batch API output file
and commits every answer to the LLM cache under its request's key (`custom_id`). Rerunning the
job then replays the answers and stops each item at its next uncached request: the next wave.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..store import Store
from .base import ChatRequest, LLMError, response_from_message
from .endpoints import Endpoint


def write_wave(store: Store, requests: dict[str, ChatRequest], model_id: str, out_dir: Path,
               payload: Any, model: str) -> Path | None:
    """Write `requests` (key -> request) as the next wave file in `out_dir`; None if empty.
    `payload(request, endpoint)` builds the wire body (the backend's own)."""
    if not requests:
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    wave = len(list(out_dir.glob("wave-*.jsonl"))) + 1
    path = out_dir / f"wave-{wave:03d}.jsonl"
    ep = Endpoint(url="batch", model=model)
    rows = []
    with path.open("w", encoding="utf-8") as f:
        for key, req in sorted(requests.items()):
            body = payload(req, ep)
            f.write(json.dumps({"custom_id": key, "method": "POST", "url": "/v1/chat/completions",
                                "body": body}, ensure_ascii=False) + "\n")
            rows.append((key, model_id, json.dumps(req.to_dict(), ensure_ascii=False), req.item,
                         req.stage, path.name))
    store.cache.put_batch_requests(rows)
    return path


def load_results(store: Store, path: Path) -> dict[str, int]:
    """Commit the answers of a Batch API output file to the cache; returns counts. Lines whose
    request this store never wrote, or that failed, are reported, never guessed."""
    counts = {"loaded": 0, "already_cached": 0, "failed": 0, "unknown": 0}
    errors: list[str] = []
    try:
        lines = path.read_text("utf-8").splitlines()
    except OSError as e:
        raise LLMError(f"{path}: {e}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            key = row["custom_id"]
        except (ValueError, KeyError, TypeError):
            raise LLMError(f"{path}:{n}: not a Batch API output line") from None
        meta = store.cache.batch_request(key)
        if meta is None:
            counts["unknown"] += 1
            errors.append(f"{path}:{n}: custom_id {key[:16]}... was not written by this store")
            continue
        resp = (row.get("response") or {})
        body = resp.get("body") or {}
        if row.get("error") or resp.get("status_code", 200) != 200 or not body.get("choices"):
            counts["failed"] += 1
            errors.append(f"{path}:{n}: request failed: {row.get('error') or resp.get('status_code')}")
            continue
        if store.cache.cache_get(key) is not None:
            counts["already_cached"] += 1
            continue
        ch = body["choices"][0]
        ans = response_from_message(ch.get("message") or {}, ch.get("finish_reason"),
                                    body.get("usage"), endpoint=f"batch:{path.name}",
                                    logprobs=ch.get("logprobs"))
        store.cache.cache_put(key, meta["model"], meta["request"], ans.text, ans.usage, 0.0,
                              thinking=ans.thinking, finish_reason=ans.finish_reason,
                              endpoint=ans.endpoint, item_id=meta["item_id"], stage=meta["stage"],
                              logprobs=ans.logprobs)
        counts["loaded"] += 1
    counts["errors"] = errors  # type: ignore[assignment]
    return counts
