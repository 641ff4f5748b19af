"""The static files and the error pages (plain HTML, never a stack trace)."""

from __future__ import annotations

import logging
from functools import cache

from fastapi import APIRouter, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response

from .common import TEMPLATES, page

STATIC = {"app.css": "text/css", "keys.js": "text/javascript"}
log = logging.getLogger("coig_writer.review")
router = APIRouter()


@cache
def static_text(name: str) -> str:
    return (TEMPLATES / name).read_text("utf-8")


@router.get("/static/{name}")
def static_file(name: str) -> Response:
    if name not in STATIC:
        raise HTTPException(404, "no such file")
    return Response(static_text(name), media_type=STATIC[name])


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 303:
        return RedirectResponse((exc.headers or {})["Location"], status_code=303)
    return page(request, "error.html", exc.status_code, message=exc.detail, user=None)


async def form_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    names = sorted({str(e.get("loc", ("", "?"))[-1]) for e in exc.errors()})
    return page(request, "error.html", 400, user=None,
                message="missing or invalid form fields: " + ", ".join(names))


async def internal_error(request: Request, exc: Exception) -> Response:
    log.exception("review app error on %s", request.url.path)
    return page(request, "error.html", 500, user=None,
                message="internal error; it was logged, please tell the admin")


ERROR_HANDLERS = {HTTPException: http_error, RequestValidationError: form_error,
                  Exception: internal_error}
