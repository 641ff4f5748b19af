"""Per-genre review guidelines: everyone reads them, admins edit them."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ...genres import load_taxonomy
from .. import auth
from .common import FormDep, StoreDep, UserDep, address, page, role

router = APIRouter()


@router.get("/guidelines")
def guidelines(request: Request, store: StoreDep, user: UserDep) -> HTMLResponse:
    tax = load_taxonomy()
    return page(request, "guidelines.html", user=user, taxonomy=tax, genre=None,
                have={g.key for c in tax.categories for g in c.genres
                      if store.review.guideline(g.key)})


@router.get("/guidelines/{genre}")
def guideline(request: Request, genre: str, store: StoreDep, user: UserDep,
              notice: str | None = None) -> HTMLResponse:
    if genre not in load_taxonomy().genres_by_key():
        raise HTTPException(404, "no such genre")
    return page(request, "guidelines.html", user=user, genre=genre,
                guideline=store.review.guideline(genre), notice=notice)


@router.post("/guidelines/{genre}")
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
