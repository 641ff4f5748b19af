"""The embedded llama.cpp engine (xllamacpp: prebuilt wheels, no compiler).

`EmbeddedEngine` runs llama.cpp's native server inside this process, listening on loopback;
`LocalBackend` talks to it through the same OpenAI-compatible client as any other server, so
the embedded path and the HTTP path share one answer parser. `python -m coig_writer.llm.engine`
serves a GGUF in the foreground (used by `models serve` and the test fixtures).
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from pathlib import Path
from typing import Any

from .base import ChatRequest, ChatResponse, LLMError
from .openai_compat import OpenAICompatBackend

# Measured on 2 cores (bench/engine_settings.py, docs/benchmarks.md): 1, 2 and 4 slots gave
# 27.3, 25.7 and 32.1 generated tokens/s over the same 4 requests: on a CPU, slots mostly split
# the same cores. Two slots let a second request's prompt be processed while one decodes, and
# keep two long construction prompts within the shared 8k context (four could overflow it).
DEFAULT_PARALLEL = 2
DEFAULT_REPEAT_PENALTY = 1.05
# Prompt caching: each slot keeps the KV cache of its last prompt (cache_prompt), a request goes
# to the idle slot whose cached prompt shares the largest part of it when that part exceeds
# SLOT_SIMILARITY (else to the least recently used slot), and prompts pushed out of a slot are
# kept in a host-memory cache (cache_ram_mib) from which a later call restores its prefix. With
# the shared prompt layout every call of a text after its first starts from the cached text.
SLOT_SIMILARITY = 0.1
CACHE_RAM_MIB = 1024


def engine_params(model_path: str | Path, *, n_ctx: int = 8192, n_parallel: int = DEFAULT_PARALLEL,
                  n_threads: int | None = None, port: int = 0, alias: str | None = None,
                  repeat_penalty: float = DEFAULT_REPEAT_PENALTY, cache_prompt: bool = True,
                  slot_similarity: float = SLOT_SIMILARITY) -> Any:
    import xllamacpp as xl

    path = Path(model_path)
    if not path.exists():
        raise LLMError(f"model file not found: {path}")
    p = xl.CommonParams()
    p.model.path = str(path)
    if alias:
        p.model_alias = {alias}  # a set of names: a plain string would become its letters
    p.n_parallel = n_parallel
    p.kv_unified = True  # slots share the whole context instead of n_ctx / n_parallel each
    p.n_ctx = n_ctx
    # COIG_WRITER_THREADS: fewer threads than cores is faster on a machine shared with other
    # busy processes (llama.cpp's threads wait on each other at every barrier)
    threads = n_threads or int(os.environ.get("COIG_WRITER_THREADS") or 0) or os.cpu_count() or 2
    p.cpuparams.n_threads = threads
    p.cpuparams_batch.n_threads = threads
    p.port = port
    p.hostnames = ["127.0.0.1"]
    p.sampling.penalty_repeat = repeat_penalty
    p.cache_prompt = cache_prompt  # per-request `cache_prompt` in the body can still turn it off
    p.slot_prompt_similarity = slot_similarity
    p.cache_ram_mib = CACHE_RAM_MIB if cache_prompt else 0
    p.verbosity = -1
    return p


class EmbeddedEngine:
    """llama.cpp's server in this process; `base_url` is its OpenAI-compatible API."""

    def __init__(self, model_path: str | Path, **params: Any):
        self.params = engine_params(model_path, **params)
        self._server: Any = None
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"{self.start()._server.listening_address}/v1"

    def start(self) -> EmbeddedEngine:
        with self._lock:
            if self._server is None:
                import xllamacpp as xl

                try:
                    self._server = xl.Server(self.params)
                except Exception as e:  # noqa: BLE001 - the engine raises plain exceptions
                    raise LLMError(f"embedded engine failed to load {self.params.model.path}: "
                                   f"{e}") from e
        return self

    def stop(self) -> None:
        with self._lock:
            self._server = None  # the server shuts down when released


class LocalBackend(OpenAICompatBackend):
    """The embedded model as a backend: loaded on the first call, JSON-schema constrained."""

    def __init__(self, model_path: str | Path, *, name: str | None = None, n_ctx: int = 8192,
                 n_parallel: int = DEFAULT_PARALLEL, n_threads: int | None = None,
                 repeat_penalty: float = DEFAULT_REPEAT_PENALTY, timeout_s: float = 3600.0,
                 cache_prompt: bool = True):
        self.engine = EmbeddedEngine(model_path, n_ctx=n_ctx, n_parallel=n_parallel,
                                     n_threads=n_threads, repeat_penalty=repeat_penalty,
                                     cache_prompt=cache_prompt)
        self.name = name or Path(model_path).name
        super().__init__("http://127.0.0.1:0/v1", "local", concurrency=n_parallel,
                         timeout_s=timeout_s, max_retries=1,
                         model_id=f"llama.cpp:{self.name}",
                         extra_body=None if cache_prompt else {"cache_prompt": False})
        self._started = False

    async def chat(self, request: ChatRequest) -> ChatResponse:
        if not self._started:
            import asyncio

            url = await asyncio.to_thread(lambda: self.engine.base_url)
            self.router.endpoints[0].url = url
            self.router.endpoints[0].max_concurrency = self.engine.params.n_parallel
            self._started = True
        return await super().chat(request)

    async def aclose(self) -> None:
        await super().aclose()
        self.engine.stop()
        self._started = False


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Serve a GGUF model over an OpenAI-compatible API "
                                             "on 127.0.0.1 (llama.cpp via xllamacpp).")
    ap.add_argument("--model", required=True)
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--alias", default=None)
    ap.add_argument("--n-ctx", type=int, default=8192)
    ap.add_argument("--n-parallel", type=int, default=DEFAULT_PARALLEL)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--slot-similarity", type=float, default=SLOT_SIMILARITY,
                    help="share of a prompt a slot's cached prompt must match to be chosen")
    args = ap.parse_args(argv)
    engine = EmbeddedEngine(args.model, n_ctx=args.n_ctx, n_parallel=args.n_parallel,
                            n_threads=args.threads, port=args.port, alias=args.alias,
                            slot_similarity=args.slot_similarity).start()
    print(f"serving {args.model} at {engine.base_url}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    engine.stop()


if __name__ == "__main__":
    main()
