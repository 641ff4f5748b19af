"""Loopback HTTP servers for tests: a scripted fault injector and a counting proxy.

The fault injector answers OpenAI-style chat requests from a script of faults (429, 500, a
slow answer for timeouts, non-JSON content, a body that is not JSON, a reset or half-closed
connection, a request never answered, a 429 asking to wait a day); it exists only to inject
faults. The proxy forwards
to a real server (llama.cpp) and records every request body it forwarded.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

STAGE_HEADER = "X-Coig-Stage"  # the machine-readable stage tag every backend call carries


class Request(dict):
    """A request body as the handlers see it, with the HTTP headers it came with (names in
    lower case)."""

    headers: dict[str, str]


def stage_of(body: dict[str, Any]) -> str:
    """The stage (construction: screen, reconstruct_prompt, reasoning, validate, score; judging:
    "judge pairwise", ...) a request belongs to, from the tag the backend sends with it; never
    from the prompt's wording."""
    headers = getattr(body, "headers", None)
    if headers is None:
        raise AssertionError("stage_of needs a request as the stub server received it")
    stage = headers.get(STAGE_HEADER.lower())
    if not stage:
        raise AssertionError(f"request without the {STAGE_HEADER} header")
    return stage


def completion(content: str) -> dict[str, Any]:
    return {"id": "x", "object": "chat.completion", "created": 0, "model": "stub",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


class _Server:
    def __init__(self, handle: Callable[[dict[str, Any]], tuple[int, dict[str, Any], float]]):
        outer = self
        self.requests: list[dict[str, Any]] = []
        self.inflight = 0
        self.max_inflight = 0
        self._lock = threading.Lock()
        self.closing = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = Request(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                body.headers = {k.lower(): v for k, v in self.headers.items()}
                with outer._lock:
                    outer.requests.append(body)
                    outer.inflight += 1
                    outer.max_inflight = max(outer.max_inflight, outer.inflight)
                try:
                    status, payload, delay, *more = handle(body)
                    headers = more[0] if more else {}
                    if status == "reset":  # RST instead of an answer
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                   struct.pack("ii", 1, 0))
                        self.connection.close()
                        return
                    if status == "halfclose":  # our side closed for writing, no answer
                        self.connection.shutdown(socket.SHUT_WR)
                        outer.closing.wait(delay or 30)
                        return
                    if status == "hang":  # never answers (until the server stops)
                        outer.closing.wait(delay or 3600)
                        return
                    outer.closing.wait(delay)
                    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    if status == 429 and "Retry-After" not in headers:
                        self.send_header("Retry-After", "0")
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with outer._lock:
                        outer.inflight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> _Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class FaultServer(_Server):
    """Plays `script` in order (then repeats its last entry). Entries: ("429",), ("500",),
    ("slow", seconds, content), ("ok", content, delay), ("badjson",) (a 200 whose body is not
    JSON), ("reset",), ("halfclose",), ("hang",), ("retry-after", seconds) (a 429 with that
    Retry-After)."""

    def __init__(self, script: list[tuple[Any, ...]]):
        self.script = list(script)
        self._i = 0
        self._slock = threading.Lock()
        super().__init__(self._handle)

    def _handle(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
        with self._slock:
            step = self.script[min(self._i, len(self.script) - 1)]
            self._i += 1
        kind = step[0]
        if kind in ("429", "500"):
            return int(kind), {"error": {"message": f"injected {kind}"}}, 0.0
        if kind in ("reset", "halfclose", "hang"):
            return kind, None, 0.0
        if kind == "badjson":
            return 200, b"<html>502 Bad Gateway</html>", 0.0
        if kind == "retry-after":
            return 429, {"error": {"message": "slow down"}}, 0.0, {"Retry-After": str(step[1])}
        if kind == "slow":
            return 200, completion(step[2]), step[1]
        return 200, completion(step[1]), step[2] if len(step) > 2 else 0.0


class CountingProxy(_Server):
    """Forwards chat requests to `upstream` (a real server) and records each request body."""

    def __init__(self, upstream: str):
        self.client = httpx.Client(base_url=upstream, timeout=600)
        super().__init__(self._forward)

    def _forward(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
        try:
            r = self.client.post("/chat/completions", json=body)
        except httpx.RemoteProtocolError:  # a keep-alive connection the upstream closed
            r = self.client.post("/chat/completions", json=body)
        return r.status_code, r.json(), 0.0
