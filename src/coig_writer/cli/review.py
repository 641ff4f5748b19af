"""Review web app commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..store import DEFAULT_DB, Store
from .common import (
    DbOpt,
    console,
    fail,
)

review_app = typer.Typer(help="Expert review web app and blind human ranking.", no_args_is_help=True)


def _policy(k: int, specialist: list[str]) -> object:
    from ..review.service import ReviewPolicy

    per = {}
    for spec in specialist:
        genre, _, n = spec.partition("=")
        per[genre] = int(n or 4)
    return ReviewPolicy(k=k, per_genre=per)


@review_app.command("add-user")
def review_add_user(
    username: str, role: str = typer.Option("reviewer", help="admin, reviewer or rater"),
    password_env: str = typer.Option("COIG_WRITER_PASSWORD", help="Env var holding the password."),
    db: DbOpt = Path(DEFAULT_DB),
) -> None:
    """Create or reset a user; the password is read from an env var (never from argv).

    Example: COIG_WRITER_PASSWORD=... coig-writer review add-user alice --role admin
    """
    import os

    from ..review.auth import add_user

    password = os.environ.get(password_env)
    if not password:
        raise fail(f"set the password in ${password_env}")
    with Store(db) as store:
        try:
            add_user(store, username, password, role)
        except ValueError as e:
            raise fail(str(e)) from None
    console.print(f"user {username} ({role}) saved")


# assign, serve and export must share one policy, or statuses would not match assignments
KOpt = Annotated[int, typer.Option("--k", help="Reviewers per item.")]
SpecialistOpt = Annotated[list[str], typer.Option(
    "--specialist", help="genre=N or category=N reviewers for specialist items (repeat).")]
SPECIALIST_DEFAULT = ["poetry=4", "script=4"]


@review_app.command("assign")
def review_assign(
    db: DbOpt = Path(DEFAULT_DB),
    k: KOpt = 2,
    specialist: SpecialistOpt = SPECIALIST_DEFAULT,
) -> None:
    """Assign k reviewers to every triplet awaiting review (least-loaded first)."""
    from ..review.service import assign_reviews

    with Store(db) as store:
        try:
            n = assign_reviews(store, _policy(k, specialist))
        except ValueError as e:
            raise fail(str(e)) from None
    console.print(f"{n} new assignments")


@review_app.command("serve")
def review_serve(
    db: DbOpt = Path(DEFAULT_DB),
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8600),
    k: KOpt = 2,
    specialist: SpecialistOpt = SPECIALIST_DEFAULT,
    secure_cookies: bool = typer.Option(False, help="Mark cookies Secure (behind HTTPS)."),
    no_ties: bool = typer.Option(False, help="Forbid ties in blind ranking."),
) -> None:
    """Serve the review app over the store.

    Example: coig-writer review serve --db coig-writer.sqlite --port 8600
    """
    import uvicorn

    from ..review.app import create_app

    app_ = create_app(db, _policy(k, specialist), secure_cookies=secure_cookies,
                      allow_ties=not no_ties)
    uvicorn.run(app_, host=host, port=port, log_level="warning")


@review_app.command("export")
def review_export(out: Path, db: DbOpt = Path(DEFAULT_DB), k: KOpt = 2,
                  specialist: SpecialistOpt = SPECIALIST_DEFAULT) -> None:
    """Export every review decision, edit diff, ranking and agreement statistic as JSON."""
    from ..review.service import export_decisions

    with Store(db) as store:
        data = export_decisions(store, _policy(k, specialist))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, ensure_ascii=False, indent=1, default=str), "utf-8")
    console.print(f"wrote {len(data['items'])} items and {len(data['rankings'])} rankings to {out}")
