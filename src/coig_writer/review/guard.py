"""ASGI guard in front of the review app: allowed Host names, a total request body limit,
trusted-proxy headers, and the security headers plus `Cache-Control: no-store` on every
response (pages, redirects, errors, static files, the export)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
                   Awaitable[None]]

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; object-src 'none'; "
                               "base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
}
DEFAULT_HOSTS = ("127.0.0.1", "localhost", "::1")
MAX_BODY = 4 * 1024 * 1024


def host_name(value: str) -> str:
    """The host part of a Host header: `[::1]:8600` -> `::1`, `a.b:80` -> `a.b`."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Guard:
    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str] = (),
                 max_body: int = MAX_BODY, trusted_proxies: Iterable[str] = ()):
        self.app = app
        self.hosts = {h.lower() for h in (*DEFAULT_HOSTS, *allowed_hosts)}
        self.max_body = max_body
        self.proxies = set(trusted_proxies)

    async def _plain(self, send: Callable[[Message], Awaitable[None]], status: int,
                     text: str) -> None:
        body = (f"<!doctype html><meta charset=utf-8><title>{status}</title>"
                f"<h1>{status}</h1><p id=error>{text}</p>").encode()
        headers = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
        headers += [(b"content-type", b"text/html; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        client = (scope.get("client") or ("", 0))[0]
        if client in self.proxies:  # only a trusted proxy may say who the client is
            proto = headers.get("x-forwarded-proto", "").split(",")[0].strip()
            if proto in ("http", "https"):
                scope["scheme"] = proto
            fwd = headers.get("x-forwarded-for", "").split(",")[-1].strip()
            if fwd:
                scope["client"] = (fwd, 0)
        if host_name(headers.get("host", "")) not in self.hosts:
            await self._plain(send, 400, "unknown host name (start the app with --allowed-host)")
            return
        try:
            declared = int(headers.get("content-length", "0") or 0)
        except ValueError:
            await self._plain(send, 400, "bad Content-Length")
            return
        if declared > self.max_body:
            await self._plain(send, 413, f"request too large: the limit is {self.max_body} bytes")
            return
        # read the whole body first (bounded), so a chunked upload cannot pass the limit
        chunks: list[bytes] = []
        size = 0
        more = scope["method"] in ("POST", "PUT", "PATCH")
        while more:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            chunks.append(msg.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body:
                await self._plain(send, 413, f"request too large: the limit is {self.max_body} "
                                             "bytes")
                return
            more = msg.get("more_body", False)
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        https = scope.get("scheme") == "https"

        async def with_headers(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                have = {k.lower() for k, _ in msg.get("headers", [])}
                extra = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()
                         if k.lower().encode() not in have]
                if https:
                    extra.append((b"strict-transport-security", b"max-age=31536000"))
                msg = {**msg, "headers": [*msg.get("headers", []), *extra]}
            await send(msg)

        await self.app(scope, replay, with_headers)
