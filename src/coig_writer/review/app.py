"""FastAPI review app over the project store. Pages are server-rendered with autoescaped
Jinja templates; the only script is a self-hosted keyboard-shortcut helper (the pages work
without it); every POST carries a CSRF token; each decision is committed before the next item
is shown. The Guard middleware checks Host names and body size and adds the security headers.
The routes live in `routes/` (one APIRouter per area); this module only composes them."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from ..store import Store
from . import service
from .guard import MAX_BODY, Guard
from .routes import ROUTERS, site
from .routes.common import Settings, make_templates


def lifespan_with(background: Callable[[], Any] | None) -> Callable[[FastAPI], Any]:
    """A lifespan that runs `background()` as a task while the app serves."""
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(background()) if background else None
        yield
        if task:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    return lifespan


def create_app(db: str | Path, policy: service.ReviewPolicy | None = None,
               secure_cookies: bool = False, allow_ties: bool = True,
               allowed_hosts: tuple[str, ...] = (), trusted_proxies: tuple[str, ...] = (),
               max_body: int = MAX_BODY,
               background: Callable[[], Any] | None = None) -> FastAPI:
    """The review app. Cookies are `Secure` when the request came over HTTPS (directly, or per
    X-Forwarded-Proto from a `trusted_proxies` address) or always with `secure_cookies`.
    `background`, if given, is a coroutine function run as a task while the app serves (the
    refinement worker of `review serve --refine`)."""
    policy = policy or service.ReviewPolicy()
    app = FastAPI(title="coig-writer review", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan_with(background), exception_handlers=site.ERROR_HANDLERS)
    app.add_middleware(Guard, allowed_hosts=allowed_hosts, max_body=max_body,
                       trusted_proxies=trusted_proxies)
    app.state.review = Settings(db=db, policy=policy, secure_cookies=secure_cookies,
                                allow_ties=allow_ties, max_body=max_body, templates=make_templates())
    with Store(db) as s:
        service.save_policy(s, policy)
    for router in ROUTERS:
        app.include_router(router)
    return app
