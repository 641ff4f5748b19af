"""What the review routers share: the app's settings (kept on `app.state.review`), the store
and current-user dependencies, role and CSRF checks, the parsed form and page rendering."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from starlette.formparsers import MultiPartException

from ...store import Store
from .. import auth, service
from ..guard import SECURITY_HEADERS

COOKIE = "cw_session"
LOGIN_CSRF = "cw_login_csrf"
FILTERS = ("status", "genre", "category")
TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


@dataclass(frozen=True)
class Settings:
    """One review app's configuration, as `create_app` was given it."""
    db: str | Path
    policy: service.ReviewPolicy
    secure_cookies: bool
    allow_ties: bool
    max_body: int
    templates: Jinja2Templates


def make_templates() -> Jinja2Templates:
    """The page templates, every variable HTML-escaped."""
    templates = Jinja2Templates(directory=str(TEMPLATES))
    templates.env.autoescape = True
    return templates


class Forbidden(HTTPException):
    def __init__(self, detail: str = "forbidden") -> None:
        super().__init__(403, detail)


def settings(request: Request) -> Settings:
    return request.app.state.review


SettingsDep = Annotated[Settings, Depends(settings)]


def get_store(cfg: SettingsDep) -> Iterator[Store]:
    with Store(cfg.db) as s:
        yield s


StoreDep = Annotated[Store, Depends(get_store)]


def current_user(request: Request, store: StoreDep) -> dict[str, str]:
    """The logged-in user (with the session's `csrf` token); else a redirect to the login."""
    user = auth.session_user(store, request.cookies.get(COOKIE))
    if user is None:
        raise HTTPException(303, headers={"Location": "/login"})
    return user


UserDep = Annotated[dict[str, str], Depends(current_user)]


async def parsed_form(request: Request, cfg: SettingsDep) -> dict[str, Any]:
    """The posted form with every field allowed up to the body limit (README: 4 MiB; the
    Guard bounds the whole body), as {name: value or [values]}; `_refused` holds the
    reason when it cannot be parsed at all."""
    try:
        form = await request.form(max_part_size=cfg.max_body, max_fields=200)
    except (HTTPException, MultiPartException) as e:
        return {"_refused": getattr(e, "detail", None) or getattr(e, "message", str(e))}
    return {k: form.getlist(k) if k == "fields" else form.get(k) for k in form}


FormDep = Annotated[dict[str, Any], Depends(parsed_form)]


def address(request: Request) -> str:
    return request.client.host if request.client else ""


def secure(request: Request) -> bool:
    """Whether cookies get `Secure`: always with `secure_cookies`, else over HTTPS."""
    return settings(request).secure_cookies or request.url.scheme == "https"


def role(user: dict[str, str], *allowed: str) -> None:
    if user["role"] not in allowed:
        raise Forbidden(f"this page is for {' or '.join(allowed)} accounts")


def may_review(store: Store, user: dict[str, str], item_id: str, policy: service.ReviewPolicy) -> None:
    role(user, "reviewer", "admin")
    if not service.may_decide(store, item_id, user["username"], user["role"], policy):
        raise Forbidden("this item is not assigned to you")


def check_csrf(user: dict[str, str], token: str | None) -> None:
    if not auth.csrf_ok(user["csrf"], token):
        raise Forbidden("invalid or missing CSRF token")


def filters_of(request: Request) -> dict[str, str]:
    """The queue filters (status, genre, category) in the query string, each cut to 64 chars."""
    return {k: request.query_params.get(k, "")[:64] for k in FILTERS
            if request.query_params.get(k)}


def page(request: Request, name: str, code: int = 200, **ctx: Any) -> HTMLResponse:
    """A rendered template with the security headers."""
    cfg = settings(request)
    resp = cfg.templates.TemplateResponse(request, name, {"max_body": cfg.max_body, **ctx},
                                          status_code=code)
    resp.headers.update(SECURITY_HEADERS)
    return resp


def quoted(text: str) -> str:
    """A notice for a redirect's query string, at most 300 characters."""
    return quote(text[:300])
