"""The admin's page: users, assignments, agreement, refinements, the audit log and the export."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from .. import auth, service
from .common import SettingsDep, StoreDep, UserDep, address, check_csrf, page, quoted, role

router = APIRouter()


@router.get("/admin")
def admin(request: Request, store: StoreDep, user: UserDep, cfg: SettingsDep,
          notice: str | None = None) -> HTMLResponse:
    role(user, "admin")
    items = list(service.statuses(store, cfg.policy).values())
    return page(request, "admin.html", user=user, users=store.auth.users(), items=items,
                agreement=service.agreement_stats(store), notice=notice, k=cfg.policy.k,
                acceptance=service.acceptance_counts(store, cfg.policy),
                refinements=store.review.refinements()[-50:], audit=store.auth.audit_log(limit=50))


@router.post("/admin/users")
def admin_add_user(request: Request, store: StoreDep, user: UserDep,
                   username: Annotated[str, Form()], password: Annotated[str, Form()],
                   new_role: Annotated[str, Form()], csrf: Annotated[str, Form()] = "") -> Response:
    role(user, "admin")
    check_csrf(user, csrf)
    try:
        reset = auth.add_user(store, username, password, new_role)
    except ValueError as e:
        return RedirectResponse("/admin?notice=" + quoted(str(e)), 303)
    store.auth.audit(user["username"], "user_reset" if reset else "user_added",
                     detail=f"{username} ({new_role})", address=address(request))
    what = f"reset {username}; their sessions were ended" if reset else f"added {username}"
    return RedirectResponse("/admin?notice=" + quoted(what), 303)


@router.post("/admin/assign")
def admin_assign(request: Request, store: StoreDep, user: UserDep, cfg: SettingsDep,
                 csrf: Annotated[str, Form()] = "") -> Response:
    role(user, "admin")
    check_csrf(user, csrf)
    try:
        n = service.assign_reviews(store, cfg.policy)
    except ValueError as e:
        return RedirectResponse("/admin?notice=" + quoted(str(e)), 303)
    store.auth.audit(user["username"], "assign", detail=f"{n} new", address=address(request))
    return RedirectResponse("/admin?notice=" + quoted(f"{n} new assignments"), 303)


@router.get("/admin/export")
def admin_export(request: Request, store: StoreDep, user: UserDep, cfg: SettingsDep) -> JSONResponse:
    role(user, "admin")
    data = json.loads(json.dumps(service.export_decisions(store, cfg.policy), default=str))
    store.auth.audit(user["username"], "export", address=address(request))
    return JSONResponse(data, headers={"Content-Disposition":
                                       "attachment; filename=review_decisions.json"})
