"""FastAPI review app over the project store. Pages are server-rendered with autoescaped
Jinja templates; the only script is a self-hosted keyboard-shortcut helper (the pages work
without it); every POST carries a CSRF token; each decision is committed before the next item
is shown. The Guard middleware checks Host names and body size and adds the security headers."""

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.formparsers import MultiPartException

from ..genres import load_taxonomy
from ..store import Store
from . import auth, service
from .guard import MAX_BODY, SECURITY_HEADERS, Guard

COOKIE = "cw_session"
LOGIN_CSRF = "cw_login_csrf"
HEADERS = SECURITY_HEADERS
FILTERS = ("status", "genre", "category")
log = logging.getLogger("coig_writer.review")


class Forbidden(HTTPException):
    def __init__(self, detail: str = "forbidden") -> None:
        super().__init__(403, detail)


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

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(background()) if background else None
        yield
        if task:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    app = FastAPI(title="coig-writer review", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    app.add_middleware(Guard, allowed_hosts=allowed_hosts, max_body=max_body,
                       trusted_proxies=trusted_proxies)
    here = Path(__file__).parent / "templates"
    templates = Jinja2Templates(directory=str(here))
    templates.env.autoescape = True
    with Store(db) as s:
        service.save_policy(s, policy)

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

    def address(request: Request) -> str:
        return request.client.host if request.client else ""

    def secure(request: Request) -> bool:
        return secure_cookies or request.url.scheme == "https"

    def role(user: dict[str, str], *allowed: str) -> None:
        if user["role"] not in allowed:
            raise Forbidden(f"this page is for {' or '.join(allowed)} accounts")

    def may_review(store: Store, user: dict[str, str], item_id: str) -> None:
        role(user, "reviewer", "admin")
        if not service.may_decide(store, item_id, user["username"], user["role"], policy):
            raise Forbidden("this item is not assigned to you")

    def check_csrf(user: dict[str, str], token: str | None) -> None:
        if not auth.csrf_ok(user["csrf"], token):
            raise Forbidden("invalid or missing CSRF token")

    def page(request: Request, name: str, code: int = 200, **ctx: Any) -> HTMLResponse:
        resp = templates.TemplateResponse(request, name, {"max_body": max_body, **ctx},
                                          status_code=code)
        resp.headers.update(HEADERS)
        return resp

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 303:
            return RedirectResponse(exc.headers["Location"], status_code=303)
        return page(request, "error.html", exc.status_code, message=exc.detail, user=None)

    @app.exception_handler(RequestValidationError)
    async def form_error(request: Request, exc: RequestValidationError) -> Response:
        names = sorted({str(e.get("loc", ("", "?"))[-1]) for e in exc.errors()})
        return page(request, "error.html", 400, user=None,
                    message="missing or invalid form fields: " + ", ".join(names))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        log.exception("review app error on %s", request.url.path)
        return page(request, "error.html", 500, user=None,
                    message="internal error; it was logged, please tell the admin")

    static = {"app.css": "text/css", "keys.js": "text/javascript"}
    files = {n: (here / n).read_text("utf-8") for n in static}

    @app.get("/static/{name}")
    def static_file(name: str) -> Response:
        if name not in files:
            raise HTTPException(404, "no such file")
        return Response(files[name], media_type=static[name])

    # -- login ---------------------------------------------------------------------------------
    def login_page(request: Request, store: Store, code: int = 200,
                   error: str | None = None) -> HTMLResponse:
        token = auth.new_login_token(store)
        resp = page(request, "login.html", code, csrf=token, error=error, user=None)
        resp.set_cookie(LOGIN_CSRF, token, httponly=True, samesite="strict",
                        secure=secure(request))
        return resp

    @app.get("/login")
    def login_form(request: Request, store: StoreDep) -> HTMLResponse:
        return login_page(request, store)

    @app.post("/login")
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

    @app.post("/logout")
    def logout(request: Request, store: StoreDep, user: UserDep,
               csrf: Annotated[str, Form()] = "") -> Response:
        check_csrf(user, csrf)
        auth.logout(store, request.cookies.get(COOKIE, ""))
        store.auth.audit(user["username"], "logout", address=address(request))
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(COOKIE)
        return resp

    @app.get("/")
    def home(user: UserDep) -> Response:
        return RedirectResponse({"admin": "/admin", "reviewer": "/review",
                                 "rater": "/rank"}[user["role"]], status_code=303)

    # -- review --------------------------------------------------------------------------------
    def filters_of(request: Request) -> dict[str, str]:
        return {k: request.query_params.get(k, "")[:64] for k in FILTERS
                if request.query_params.get(k)}

    @app.get("/review")
    def review_next(request: Request, store: StoreDep, user: UserDep) -> Response:
        role(user, "reviewer", "admin")
        f = filters_of(request)
        target = service.next_item(store, user["username"], policy, f)
        if target is None:
            return page(request, "done.html", user=user, what="review", filters=f)
        qs = ("?" + urlencode(f)) if f else ""
        return RedirectResponse(f"/review/{quote(target)}{qs}", status_code=303)

    @app.get("/queue")
    def review_queue(request: Request, store: StoreDep, user: UserDep) -> HTMLResponse:
        role(user, "reviewer", "admin")
        f = filters_of(request)
        items = service.queue(store, user["username"], policy)
        done, total = service.progress(items)
        shown = [i for i in items if all(str(i.get(k)) == v for k, v in f.items())]
        return page(request, "queue.html", user=user, items=shown, done=done, total=total,
                    filters=f, statuses=("pending", "refining", "accepted", "rejected",
                                         "disputed"),
                    genres=sorted({str(i["genre"]) for i in items if i["genre"]}),
                    categories=sorted({str(i["category"]) for i in items if i["category"]}))

    def review_page(request: Request, store: Store, user: dict[str, str], item_id: str,
                    code: int = 200, notice: str | None = None,
                    draft: dict[str, Any] | None = None) -> HTMLResponse:
        t = store.construct.get_triplet(item_id)
        if t is None:
            raise HTTPException(404, "no such item")
        src = store.corpus.get_source(t.source_id) if t.source_id else None
        items = service.queue(store, user["username"], policy)
        done, total = service.progress(items)
        usefulness = service.usefulness_fields(store.usefulness.usefulness(t.id))
        guideline = store.review.guideline(t.genre) if t.genre else None
        return page(request, "review.html", code, user=user, t=t, source=src,
                    version=store.review.triplet_version(item_id),
                    reviews=service.visible_reviews(store, item_id, user["username"],
                                                    user["role"]),
                    history=service.history(store, item_id),
                    versions=store.review.versions(item_id), notice=notice, draft=draft or {},
                    status=service.item_status(store, t, policy), done=done, total=total,
                    analyses=service.analyses(store, t), usefulness=usefulness,
                    rereview=service.rereview(store, t, user["username"]), guideline=guideline,
                    filters=filters_of(request), round=store.review.review_round(item_id),
                    fields=service.REFINABLE)

    @app.get("/review/{item_id}")
    def review_item(request: Request, item_id: str, store: StoreDep, user: UserDep,
                    notice: str | None = None) -> HTMLResponse:
        may_review(store, user, item_id)
        return review_page(request, store, user, item_id, notice=notice)

    async def parsed_form(request: Request) -> dict[str, Any]:
        """The posted form with every field allowed up to the body limit (README: 4 MiB; the
        Guard bounds the whole body), as {name: value or [values]}; `_refused` holds the
        reason when it cannot be parsed at all."""
        try:
            form = await request.form(max_part_size=max_body, max_fields=200)
        except (HTTPException, MultiPartException) as e:
            return {"_refused": getattr(e, "detail", None) or getattr(e, "message", str(e))}
        return {k: form.getlist(k) if k == "fields" else form.get(k) for k in form}

    FormDep = Annotated[dict[str, Any], Depends(parsed_form)]

    @app.post("/review/{item_id}")
    def review_submit(request: Request, item_id: str, store: StoreDep, user: UserDep,
                      form: FormDep) -> Response:
        """Any refused form comes back as the review page with the typed text and the reason."""
        may_review(store, user, item_id)
        edits = {k: str(form[k]) for k in ("query", "thought", "answer") if form.get(k) is not None}
        reason, decision = str(form.get("reason") or ""), str(form.get("decision") or "")
        draft = {**edits, "reason": reason, "decision": decision, "fields": form.get("fields") or []}

        def refused(code: int, why: str) -> HTMLResponse:
            return review_page(request, store, user, item_id, code, draft=draft,
                               notice=f"not saved: {why}. Your text is kept below.")

        if "_refused" in form:
            return refused(400, f"the form could not be read ({form['_refused']})")
        if not auth.csrf_ok(user["csrf"], str(form.get("csrf") or "")):
            return refused(403, "invalid or missing CSRF token (the page may be from an older "
                                "login); save again")
        bad = [k for k in ("decision", "version") if not str(form.get(k) or "").strip()]
        if not str(form.get("version") or "").strip().isdigit():
            bad = sorted({*bad, "version"})
        if bad:
            return refused(400, "missing or invalid form fields: " + ", ".join(bad)
                           + (" (choose a decision)" if "decision" in bad else ""))
        try:
            service.decide(store, item_id, user["username"], decision, reason,
                           int(str(form["version"])), policy, edits,
                           fields=form.get("fields") or None, address=address(request))
        except service.EditConflict as e:
            return review_page(request, store, user, item_id, 409, draft=draft,
                               notice=f"conflict: {e}. Your text is kept below; compare it "
                                      "with the new version and save again.")
        except ValueError as e:
            return refused(400, str(e))
        except KeyError:
            raise HTTPException(404, "no such item") from None
        nxt = str(form.get("next_filters") or "")
        qs = nxt if re.fullmatch(r"[\w=&%.\-]*", nxt) else ""
        return RedirectResponse("/review" + (f"?{qs}" if qs else ""), status_code=303)

    # -- guidelines ----------------------------------------------------------------------------
    @app.get("/guidelines")
    def guidelines(request: Request, store: StoreDep, user: UserDep) -> HTMLResponse:
        tax = load_taxonomy()
        return page(request, "guidelines.html", user=user, taxonomy=tax, genre=None,
                    have={g.key for c in tax.categories for g in c.genres
                          if store.review.guideline(g.key)})

    @app.get("/guidelines/{genre}")
    def guideline(request: Request, genre: str, store: StoreDep, user: UserDep,
                  notice: str | None = None) -> HTMLResponse:
        if genre not in load_taxonomy().genres_by_key():
            raise HTTPException(404, "no such genre")
        return page(request, "guidelines.html", user=user, genre=genre,
                    guideline=store.review.guideline(genre), notice=notice)

    @app.post("/guidelines/{genre}")
    def guideline_save(request: Request, genre: str, store: StoreDep, user: UserDep,
                       form: FormDep) -> Response:
        role(user, "admin")
        if genre not in load_taxonomy().genres_by_key():
            raise HTTPException(404, "no such genre")
        text = str(form.get("text") or "").replace("\r\n", "\n")
        why = form.get("_refused") or ("" if auth.csrf_ok(user["csrf"], str(form.get("csrf") or ""))
                                       else "invalid or missing CSRF token; save again")
        if why:  # the page again, with the typed text
            return page(request, "guidelines.html", 400, user=user, genre=genre,
                        guideline=store.review.guideline(genre), draft=text, notice=f"not saved: {why}")
        store.review.set_guideline(genre, text, user["username"])
        store.auth.audit(user["username"], "guideline", genre, address=address(request))
        return RedirectResponse(f"/guidelines/{genre}?notice=saved", 303)

    # -- blind ranking -------------------------------------------------------------------------
    @app.get("/rank")
    def rank_next(request: Request, store: StoreDep, user: UserDep) -> Response:
        role(user, "rater", "admin")
        target = service.next_ranking(store, user["username"])
        if target is None:
            return page(request, "done.html", user=user, what="rank", filters={})
        return RedirectResponse(f"/rank/{quote(target)}", status_code=303)

    @app.get("/rank/{prompt_id}")
    def rank_item(request: Request, prompt_id: str, store: StoreDep, user: UserDep,
                  notice: str | None = None) -> HTMLResponse:
        role(user, "rater", "admin")
        gens = {g.model: g for g in store.evaluation.generations(prompt_id=prompt_id)}
        if len(gens) < 2:
            raise HTTPException(404, "no such ranking task")
        order = service.blind_order(user["username"], prompt_id, list(gens))
        prompt = next((p for p in store.evaluation.eval_prompts() if p.id == prompt_id), None)
        return page(request, "rank.html", user=user, prompt=prompt, prompt_id=prompt_id,
                    outputs=[gens[m].answer for m in order], notice=notice, allow_ties=allow_ties)

    @app.post("/rank/{prompt_id}")
    async def rank_submit(request: Request, prompt_id: str, store: StoreDep,
                          user: UserDep) -> Response:
        role(user, "rater", "admin")
        form = await request.form()
        check_csrf(user, str(form.get("csrf") or ""))
        raw = {k: str(v).strip() for k, v in form.items() if k.startswith("slot")}
        try:
            if any(not re.fullmatch(r"slot\d{1,3}", k) or (v and not re.fullmatch(r"\d{1,3}", v))
                   for k, v in raw.items()):
                raise ValueError("ranks are whole numbers")
            ranks = {int(k.removeprefix("slot")): float(v) for k, v in raw.items() if v}
            service.save_ranking(store, user["username"], prompt_id, ranks, allow_ties)
        except ValueError as e:
            return RedirectResponse(f"/rank/{prompt_id}?notice=" + _q(str(e)), 303)
        except KeyError:
            raise HTTPException(404, "no such ranking task") from None
        store.auth.audit(user["username"], "ranking", prompt_id, address=address(request))
        return RedirectResponse("/rank", status_code=303)

    # -- admin ---------------------------------------------------------------------------------
    @app.get("/admin")
    def admin(request: Request, store: StoreDep, user: UserDep,
              notice: str | None = None) -> HTMLResponse:
        role(user, "admin")
        items = list(service.statuses(store, policy).values())
        return page(request, "admin.html", user=user, users=store.auth.users(), items=items,
                    agreement=service.agreement_stats(store), notice=notice, k=policy.k,
                    acceptance=service.acceptance_counts(store, policy),
                    refinements=store.review.refinements()[-50:], audit=store.auth.audit_log(limit=50))

    @app.post("/admin/users")
    def admin_add_user(request: Request, store: StoreDep, user: UserDep,
                       username: Annotated[str, Form()], password: Annotated[str, Form()],
                       new_role: Annotated[str, Form()],
                       csrf: Annotated[str, Form()] = "") -> Response:
        role(user, "admin")
        check_csrf(user, csrf)
        try:
            reset = auth.add_user(store, username, password, new_role)
        except ValueError as e:
            return RedirectResponse("/admin?notice=" + _q(str(e)), 303)
        store.auth.audit(user["username"], "user_reset" if reset else "user_added",
                    detail=f"{username} ({new_role})", address=address(request))
        what = f"reset {username}; their sessions were ended" if reset else f"added {username}"
        return RedirectResponse("/admin?notice=" + _q(what), 303)

    @app.post("/admin/assign")
    def admin_assign(request: Request, store: StoreDep, user: UserDep,
                     csrf: Annotated[str, Form()] = "") -> Response:
        role(user, "admin")
        check_csrf(user, csrf)
        try:
            n = service.assign_reviews(store, policy)
        except ValueError as e:
            return RedirectResponse("/admin?notice=" + _q(str(e)), 303)
        store.auth.audit(user["username"], "assign", detail=f"{n} new", address=address(request))
        return RedirectResponse("/admin?notice=" + _q(f"{n} new assignments"), 303)

    @app.get("/admin/export")
    def admin_export(request: Request, store: StoreDep, user: UserDep) -> JSONResponse:
        role(user, "admin")
        data = json.loads(json.dumps(service.export_decisions(store, policy), default=str))
        store.auth.audit(user["username"], "export", address=address(request))
        return JSONResponse(data, headers={"Content-Disposition":
                                           "attachment; filename=review_decisions.json"})

    return app


def _q(text: str) -> str:
    return quote(text[:300])
