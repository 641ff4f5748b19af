"""Login (single-use form token, throttling), logout and the role's home page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ...store import Store
from .. import auth
from .common import COOKIE, LOGIN_CSRF, StoreDep, UserDep, address, check_csrf, page, secure

router = APIRouter()
HOMES = {"admin": "/admin", "reviewer": "/review", "rater": "/rank"}


def login_page(request: Request, store: Store, code: int = 200,
               error: str | None = None) -> HTMLResponse:
    token = auth.new_login_token(store)
    resp = page(request, "login.html", code, csrf=token, error=error, user=None)
    resp.set_cookie(LOGIN_CSRF, token, httponly=True, samesite="strict", secure=secure(request))
    return resp


@router.get("/login")
def login_form(request: Request, store: StoreDep) -> HTMLResponse:
    return login_page(request, store)


@router.post("/login")
def login(request: Request, store: StoreDep, username: Annotated[str, Form()],
          password: Annotated[str, Form()], csrf: Annotated[str, Form()] = "") -> Response:
    if not auth.take_login_token(store, request.cookies.get(LOGIN_CSRF), csrf):
        return login_page(request, store, 403, "the login form expired; try again")
    name = username[:64]
    try:
        token = auth.login(store, name, password, address(request))
    except auth.Throttled as e:
        store.auth.audit(name, "login_throttled", detail=str(e), address=address(request))
        resp = login_page(request, store, 429, str(e))
        resp.headers["Retry-After"] = str(e.retry_after)
        return resp
    if token is None:
        store.auth.audit(name, "login_failed", address=address(request))
        return login_page(request, store, 401, "wrong username or password")
    store.auth.audit(name, "login", address=address(request))
    resp = RedirectResponse("/", status_code=303)
    resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=secure(request),
                    max_age=auth.SESSION_TTL_S)
    resp.delete_cookie(LOGIN_CSRF)
    return resp


@router.post("/logout")
def logout(request: Request, store: StoreDep, user: UserDep,
           csrf: Annotated[str, Form()] = "") -> Response:
    check_csrf(user, csrf)
    auth.logout(store, request.cookies.get(COOKIE, ""))
    store.auth.audit(user["username"], "logout", address=address(request))
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(COOKIE)
    return resp


@router.get("/")
def home(user: UserDep) -> Response:
    return RedirectResponse(HOMES[user["role"]], status_code=303)
