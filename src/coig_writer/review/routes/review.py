"""The reviewer's pages: the next item, the queue with filters, an item and its decision."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ...store import Store
from .. import auth, service
from .common import (
    FormDep,
    SettingsDep,
    StoreDep,
    UserDep,
    address,
    filters_of,
    may_review,
    page,
    role,
    settings,
)

router = APIRouter()
STATUSES = ("pending", "refining", "accepted", "rejected", "disputed")


@router.get("/review")
def review_next(request: Request, store: StoreDep, user: UserDep, cfg: SettingsDep) -> Response:
    role(user, "reviewer", "admin")
    f = filters_of(request)
    target = service.next_item(store, user["username"], cfg.policy, f)
    if target is None:
        return page(request, "done.html", user=user, what="review", filters=f)
    qs = ("?" + urlencode(f)) if f else ""
    return RedirectResponse(f"/review/{quote(target)}{qs}", status_code=303)


@router.get("/queue")
def review_queue(request: Request, store: StoreDep, user: UserDep, cfg: SettingsDep) -> HTMLResponse:
    role(user, "reviewer", "admin")
    f = filters_of(request)
    items = service.queue(store, user["username"], cfg.policy)
    done, total = service.progress(items)
    shown = [i for i in items if all(str(i.get(k)) == v for k, v in f.items())]
    return page(request, "queue.html", user=user, items=shown, done=done, total=total,
                filters=f, statuses=STATUSES,
                genres=sorted({str(i["genre"]) for i in items if i["genre"]}),
                categories=sorted({str(i["category"]) for i in items if i["category"]}))


def review_page(request: Request, store: Store, user: dict[str, str], item_id: str,
                code: int = 200, notice: str | None = None,
                draft: dict[str, Any] | None = None) -> HTMLResponse:
    """An item with its source, analyses, reviews, history and versions."""
    policy = settings(request).policy
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
                reviews=service.visible_reviews(store, item_id, user["username"], user["role"]),
                history=service.history(store, item_id),
                versions=store.review.versions(item_id), notice=notice, draft=draft or {},
                status=service.item_status(store, t, policy), done=done, total=total,
                analyses=service.analyses(store, t), usefulness=usefulness,
                rereview=service.rereview(store, t, user["username"]), guideline=guideline,
                filters=filters_of(request), round=store.review.review_round(item_id),
                fields=service.REFINABLE)


@router.get("/review/{item_id}")
def review_item(request: Request, item_id: str, store: StoreDep, user: UserDep, cfg: SettingsDep,
                notice: str | None = None) -> HTMLResponse:
    may_review(store, user, item_id, cfg.policy)
    return review_page(request, store, user, item_id, notice=notice)


def form_problem(form: dict[str, Any], user: dict[str, str]) -> tuple[int, str] | None:
    """Why a posted decision form cannot be saved (status code, reason), or None."""
    if "_refused" in form:
        return 400, f"the form could not be read ({form['_refused']})"
    if not auth.csrf_ok(user["csrf"], str(form.get("csrf") or "")):
        return 403, "invalid or missing CSRF token (the page may be from an older login); save again"
    bad = [k for k in ("decision", "version") if not str(form.get(k) or "").strip()]
    if not str(form.get("version") or "").strip().isdigit():
        bad = sorted({*bad, "version"})
    if bad:
        return 400, ("missing or invalid form fields: " + ", ".join(bad)
                     + (" (choose a decision)" if "decision" in bad else ""))
    return None


@router.post("/review/{item_id}")
def review_submit(request: Request, item_id: str, store: StoreDep, user: UserDep,
                  cfg: SettingsDep, form: FormDep) -> Response:
    """Any refused form comes back as the review page with the typed text and the reason."""
    may_review(store, user, item_id, cfg.policy)
    edits = {k: str(form[k]) for k in ("query", "thought", "answer") if form.get(k) is not None}
    reason, decision = str(form.get("reason") or ""), str(form.get("decision") or "")
    draft = {**edits, "reason": reason, "decision": decision, "fields": form.get("fields") or []}

    def refused(code: int, why: str) -> HTMLResponse:
        return review_page(request, store, user, item_id, code, draft=draft,
                           notice=f"not saved: {why}. Your text is kept below.")

    if problem := form_problem(form, user):
        return refused(*problem)
    try:
        service.decide(store, item_id, user["username"], decision, reason,
                       int(str(form["version"])), cfg.policy, edits,
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
