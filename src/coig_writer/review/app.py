"""FastAPI review app over the project store. Pages are server-rendered with autoescaped
Jinja templates and no JavaScript (CSP forbids scripts); every POST carries a CSRF token; each
decision is committed before the next item is shown."""


import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from ..store import Store
from . import auth, service

COOKIE = "cw_session"
LOGIN_CSRF = "cw_login_csrf"
HEADERS = {"Content-Security-Policy": "default-src 'self'; script-src 'none'; object-src 'none'; "
                                      "frame-ancestors 'none'; form-action 'self'",
           "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}


class Forbidden(HTTPException):
    def __init__(self, detail: str = "forbidden") -> None:
        super().__init__(403, detail)


def create_app(db: str | Path, policy: service.ReviewPolicy | None = None,
               secure_cookies: bool = False, allow_ties: bool = True) -> FastAPI:
    app = FastAPI(title="coig-writer review", docs_url=None, redoc_url=None, openapi_url=None)
    templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
    templates.env.autoescape = True
    policy = policy or service.ReviewPolicy()

    def get_store() -> Iterator[Store]:
        with Store(db) as s:
            yield s

    StoreDep = Annotated[Store, Depends(get_store)]

    def current_user(request: Request, store: StoreDep) -> dict[str, str]:
        user = auth.session_user(store, request.cookies.get(COOKIE))
        if user is None:
            raise HTTPException(303, headers={"Location": "/login"})
        return user

    UserDep = Annotated[dict[str, str], Depends(current_user)]

    def role(user: dict[str, str], *allowed: str) -> None:
        if user["role"] not in allowed:
            raise Forbidden(f"this page is for {' or '.join(allowed)} accounts")

    def may_review(store: Store, user: dict[str, str], item_id: str) -> None:
        """Admins may review anything; reviewers only what is assigned to them."""
        role(user, "reviewer", "admin")
        if user["role"] == "reviewer" and (item_id, user["username"]) not in set(
                store.assignments(user["username"])):
            raise Forbidden("this item is not assigned to you")

    def check_csrf(user: dict[str, str], token: str | None) -> None:
        if not auth.csrf_ok(user["csrf"], token):
            raise Forbidden("invalid or missing CSRF token")

    def page(request: Request, name: str, code: int = 200, **ctx: Any) -> HTMLResponse:
        resp = templates.TemplateResponse(request, name, ctx, status_code=code)
        resp.headers.update(HEADERS)
        return resp

    def next_or_done(request: Request, user: dict[str, str], target: str | None,
                     queue: str) -> Response:
        """Go to the next task of a queue (`review` or `rank`), or say the queue is empty."""
        if target is None:
            return page(request, "done.html", user=user, what=queue)
        return RedirectResponse(f"/{queue}/{target}", status_code=303)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 303:
            return RedirectResponse(exc.headers["Location"], status_code=303)
        return page(request, "error.html", exc.status_code, message=exc.detail, user=None)

    css = (Path(__file__).parent / "templates" / "app.css").read_text("utf-8")

    @app.get("/static/app.css")
    def stylesheet() -> Response:
        return Response(css, media_type="text/css", headers=HEADERS)

    # -- login ---------------------------------------------------------------------------------
    @app.get("/login")
    def login_form(request: Request) -> HTMLResponse:
        token = secrets.token_urlsafe(24)
        resp = page(request, "login.html", csrf=token, error=None, user=None)
        resp.set_cookie(LOGIN_CSRF, token, httponly=True, samesite="strict", secure=secure_cookies)
        return resp

    @app.post("/login")
    def login(request: Request, store: StoreDep, username: Annotated[str, Form()],
              password: Annotated[str, Form()], csrf: Annotated[str, Form()] = "") -> Response:
        if not auth.csrf_ok(request.cookies.get(LOGIN_CSRF) or "", csrf):
            raise Forbidden("invalid or missing CSRF token")
        token = auth.login(store, username, password)
        if token is None:
            return page(request, "login.html", 401, csrf=csrf, user=None,
                        error="wrong username or password")
        resp = RedirectResponse("/", status_code=303)
        resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=secure_cookies,
                        max_age=auth.SESSION_TTL_S)
        resp.delete_cookie(LOGIN_CSRF)
        return resp

    @app.post("/logout")
    def logout(request: Request, store: StoreDep, user: UserDep,
               csrf: Annotated[str, Form()] = "") -> Response:
        check_csrf(user, csrf)
        auth.logout(store, request.cookies.get(COOKIE, ""))
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(COOKIE)
        return resp

    @app.get("/")
    def home(user: UserDep) -> Response:
        return RedirectResponse({"admin": "/admin", "reviewer": "/review",
                                 "rater": "/rank"}[user["role"]], status_code=303)

    # -- review --------------------------------------------------------------------------------
    @app.get("/review")
    def review_next(request: Request, store: StoreDep, user: UserDep) -> Response:
        role(user, "reviewer", "admin")
        return next_or_done(request, user, service.next_item(store, user["username"]), "review")

    @app.get("/review/{item_id}")
    def review_item(request: Request, item_id: str, store: StoreDep, user: UserDep,
                    notice: str | None = None) -> HTMLResponse:
        may_review(store, user, item_id)
        t = store.get_triplet(item_id)
        if t is None:
            raise HTTPException(404, "no such item")
        src = store.get_source(t.source_id) if t.source_id else None
        return page(request, "review.html", user=user, t=t, source=src,
                    version=store.triplet_version(item_id), reviews=store.reviews(item_id),
                    versions=store.versions(item_id), notice=notice,
                    status=service.item_status(store, t, policy))

    @app.post("/review/{item_id}")
    def review_submit(request: Request, item_id: str, store: StoreDep, user: UserDep,
                      decision: Annotated[str, Form()], version: Annotated[int, Form()],
                      csrf: Annotated[str, Form()] = "", reason: Annotated[str, Form()] = "",
                      query: Annotated[str | None, Form()] = None,
                      thought: Annotated[str | None, Form()] = None,
                      answer: Annotated[str | None, Form()] = None) -> Response:
        may_review(store, user, item_id)
        check_csrf(user, csrf)
        edits = {k: v for k, v in (("query", query), ("thought", thought), ("answer", answer))
                 if v is not None}
        try:
            service.decide(store, item_id, user["username"], decision, reason, version, policy,
                           edits if decision == "edit" else None)
        except service.EditConflict as e:
            return RedirectResponse(f"/review/{item_id}?notice=" + _q(f"conflict: {e}"), 303)
        except ValueError as e:
            return RedirectResponse(f"/review/{item_id}?notice=" + _q(str(e)), 303)
        except KeyError:
            raise HTTPException(404, "no such item") from None
        return RedirectResponse("/review", status_code=303)

    # -- blind ranking -------------------------------------------------------------------------
    @app.get("/rank")
    def rank_next(request: Request, store: StoreDep, user: UserDep) -> Response:
        role(user, "rater", "admin")
        return next_or_done(request, user, service.next_ranking(store, user["username"]), "rank")

    @app.get("/rank/{prompt_id}")
    def rank_item(request: Request, prompt_id: str, store: StoreDep, user: UserDep,
                  notice: str | None = None) -> HTMLResponse:
        role(user, "rater", "admin")
        gens = {g.model: g for g in store.generations(prompt_id=prompt_id)}
        if len(gens) < 2:
            raise HTTPException(404, "no such ranking task")
        order = service.blind_order(user["username"], prompt_id, list(gens))
        prompt = next((p for p in store.eval_prompts() if p.id == prompt_id), None)
        return page(request, "rank.html", user=user, prompt=prompt, prompt_id=prompt_id,
                    outputs=[gens[m].answer for m in order], notice=notice, allow_ties=allow_ties)

    @app.post("/rank/{prompt_id}")
    async def rank_submit(request: Request, prompt_id: str, store: StoreDep,
                          user: UserDep) -> Response:
        role(user, "rater", "admin")
        form = await request.form()
        check_csrf(user, str(form.get("csrf") or ""))
        try:
            ranks = {int(k.removeprefix("slot")): float(str(v)) for k, v in form.items()
                     if k.startswith("slot") and str(v).strip()}  # "–" (unranked) is empty
            service.save_ranking(store, user["username"], prompt_id, ranks, allow_ties)
        except ValueError as e:
            return RedirectResponse(f"/rank/{prompt_id}?notice=" + _q(str(e)), 303)
        except KeyError:
            raise HTTPException(404, "no such ranking task") from None
        return RedirectResponse("/rank", status_code=303)

    # -- admin ---------------------------------------------------------------------------------
    @app.get("/admin")
    def admin(request: Request, store: StoreDep, user: UserDep,
              notice: str | None = None) -> HTMLResponse:
        role(user, "admin")
        items = [(t, service.item_status(store, t, policy), len(service.latest_reviews(store, t.id)))
                 for t in store.iter_triplets()]
        return page(request, "admin.html", user=user, users=store.users(), items=items,
                    agreement=service.agreement_stats(store), notice=notice, k=policy.k)

    @app.post("/admin/users")
    def admin_add_user(store: StoreDep, user: UserDep, username: Annotated[str, Form()],
                       password: Annotated[str, Form()], new_role: Annotated[str, Form()],
                       csrf: Annotated[str, Form()] = "") -> Response:
        role(user, "admin")
        check_csrf(user, csrf)
        try:
            auth.add_user(store, username, password, new_role)
        except ValueError as e:
            return RedirectResponse("/admin?notice=" + _q(str(e)), 303)
        return RedirectResponse("/admin?notice=" + _q(f"added {username}"), 303)

    @app.post("/admin/assign")
    def admin_assign(store: StoreDep, user: UserDep, csrf: Annotated[str, Form()] = "") -> Response:
        role(user, "admin")
        check_csrf(user, csrf)
        try:
            n = service.assign_reviews(store, policy)
        except ValueError as e:
            return RedirectResponse("/admin?notice=" + _q(str(e)), 303)
        return RedirectResponse("/admin?notice=" + _q(f"{n} new assignments"), 303)

    @app.get("/admin/export")
    def admin_export(store: StoreDep, user: UserDep) -> JSONResponse:
        role(user, "admin")
        data = json.loads(json.dumps(service.export_decisions(store, policy), default=str))
        return JSONResponse(data, headers={"Content-Disposition":
                                           "attachment; filename=review_decisions.json"})

    return app


def _q(text: str) -> str:
    from urllib.parse import quote

    return quote(text[:300])
