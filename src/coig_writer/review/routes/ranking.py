"""Blind ranking of model outputs by raters."""

from __future__ import annotations

import re
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from .. import service
from .common import SettingsDep, StoreDep, UserDep, address, check_csrf, page, quoted, role

router = APIRouter()


@router.get("/rank")
def rank_next(request: Request, store: StoreDep, user: UserDep) -> Response:
    role(user, "rater", "admin")
    target = service.next_ranking(store, user["username"])
    if target is None:
        return page(request, "done.html", user=user, what="rank", filters={})
    return RedirectResponse(f"/rank/{quote(target)}", status_code=303)


@router.get("/rank/{prompt_id}")
def rank_item(request: Request, prompt_id: str, store: StoreDep, user: UserDep, cfg: SettingsDep,
              notice: str | None = None) -> HTMLResponse:
    role(user, "rater", "admin")
    gens = {g.model: g for g in store.evaluation.generations(prompt_id=prompt_id)}
    if len(gens) < 2:
        raise HTTPException(404, "no such ranking task")
    order = service.blind_order(user["username"], prompt_id, list(gens))
    prompt = next((p for p in store.evaluation.eval_prompts() if p.id == prompt_id), None)
    return page(request, "rank.html", user=user, prompt=prompt, prompt_id=prompt_id,
                outputs=[gens[m].answer for m in order], notice=notice, allow_ties=cfg.allow_ties)


@router.post("/rank/{prompt_id}")
async def rank_submit(request: Request, prompt_id: str, store: StoreDep, user: UserDep,
                      cfg: SettingsDep) -> Response:
    role(user, "rater", "admin")
    form = await request.form()
    check_csrf(user, str(form.get("csrf") or ""))
    raw = {k: str(v).strip() for k, v in form.items() if k.startswith("slot")}
    try:
        if any(not re.fullmatch(r"slot\d{1,3}", k) or (v and not re.fullmatch(r"\d{1,3}", v))
               for k, v in raw.items()):
            raise ValueError("ranks are whole numbers")
        ranks = {int(k.removeprefix("slot")): float(v) for k, v in raw.items() if v}
        service.save_ranking(store, user["username"], prompt_id, ranks, cfg.allow_ties)
    except ValueError as e:
        return RedirectResponse(f"/rank/{prompt_id}?notice=" + quoted(str(e)), 303)
    except KeyError:
        raise HTTPException(404, "no such ranking task") from None
    store.auth.audit(user["username"], "ranking", prompt_id, address=address(request))
    return RedirectResponse("/rank", status_code=303)
