"""Review web app commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..store import DEFAULT_DB, Store
from .common import (
    console,
    fail,
)
from .options import (
    ApiKeyEnvOpt,
    BackendOpt,
    BaseUrlOpt,
    ConcurrencyOpt,
    ConfigOpt,
    DbOpt,
    JsonOpt,
    LangOpt,
    LimitOpt,
    ModelOpt,
    NCtxOpt,
    PortOpt,
    backend_spec,
)

review_app = typer.Typer(help="Expert review web app and blind human ranking.", no_args_is_help=True)


def _policy(k: int, specialist: list[str], rereview: str = "same") -> object:
    from ..review.service import ReviewPolicy

    per = {}
    for spec in specialist:
        genre, _, n = spec.partition("=")
        per[genre] = int(n or 4)
    return ReviewPolicy(k=k, per_genre=per, rereview=rereview)


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
    """Assign k reviewers to every triplet awaiting review (least-loaded first).

    Example: coig-writer review assign --k 2 --specialist poetry=4
    """
    from ..review.service import assign_reviews, save_policy

    with Store(db) as store:
        try:
            policy = _policy(k, specialist)
            n = assign_reviews(store, policy)
            save_policy(store, policy)
        except ValueError as e:
            raise fail(str(e)) from None
    console.print(f"{n} new assignments")


def _pipeline(store: Store, spec, config: Path | None, lang: str | None = None):
    """The construction pipeline refinement reruns, with the backend `spec` names."""
    from ..construct.config import ConstructConfig
    from ..construct.pipeline import ConstructPipeline
    from .common import build_or_fail

    cfg = ConstructConfig.load(config, lang=lang, max_rounds=None)
    return ConstructPipeline(store, build_or_fail(spec), cfg)


RereviewOpt = Annotated[str, typer.Option(
    "--rereview", help="After a refinement: same (the reviewers who saw it) or any (any k).")]


@review_app.command("refine")
def review_refine(
    db: DbOpt = Path(DEFAULT_DB),
    backend: BackendOpt = "local",
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    api_key_env: ApiKeyEnvOpt = "OPENAI_API_KEY",
    concurrency: ConcurrencyOpt = 2,
    n_ctx: NCtxOpt = 8192,
    limit: LimitOpt = None,
    config: ConfigOpt = None,
    lang: LangOpt = None,
    max_attempts: int = typer.Option(3, help="Backend failures before a request is given up."),
) -> None:
    """Refine every item reviewers sent back: rerun the stages with their feedback, store the
    result as a new version and return the item to review. Safe to kill and rerun.

    Example: coig-writer review refine --backend openai --base-url http://127.0.0.1:8000/v1 --model qwen
    """
    spec = backend_spec(locals())
    import asyncio

    from ..review.refine import refine_pending

    with Store(db) as store:
        pipe = _pipeline(store, spec, config, lang)

        def on_item(item: str, outcome: str) -> None:
            console.print(f"{item}: {outcome}", markup=False)

        async def work():
            try:
                return await refine_pending(store, pipe, limit=limit, concurrency=concurrency,
                                            max_attempts=max_attempts, on_item=on_item)
            finally:
                await pipe.llm.aclose()

        summary = asyncio.run(work())
    console.print(f"run {summary.run_id}: {summary.pending} requests; {dict(summary.outcomes)}; "
                  f"LLM calls {summary.llm_calls}, cache hits {summary.cache_hits}")
    if summary.outcomes.get("retry"):
        raise typer.Exit(1)


@review_app.command("serve")
def review_serve(
    db: DbOpt = Path(DEFAULT_DB),
    host: str = typer.Option("127.0.0.1"),
    port: PortOpt = 8600,
    k: KOpt = 2,
    specialist: SpecialistOpt = SPECIALIST_DEFAULT,
    rereview: RereviewOpt = "same",
    allowed_host: list[str] = typer.Option([], help="Host name the app may be reached by, "
                                                    "besides 127.0.0.1/localhost (repeat)."),
    trusted_proxy: list[str] = typer.Option([], help="Address of a reverse proxy whose "
                                                     "X-Forwarded-Proto/-For are believed."),
    secure_cookies: bool = typer.Option(False, help="Always mark cookies Secure (they are "
                                                    "whenever the request came over HTTPS)."),
    max_body: int = typer.Option(4 * 1024 * 1024, help="Largest request body in bytes."),
    ssl_certfile: Path | None = typer.Option(None, help="Serve HTTPS with this certificate."),
    ssl_keyfile: Path | None = typer.Option(None, help="Key of --ssl-certfile."),
    no_ties: bool = typer.Option(False, help="Forbid ties in blind ranking."),
    refine: bool = typer.Option(False, help="Run the refinement worker in the background."),
    refine_interval: float = typer.Option(5.0, help="Seconds between refinement checks."),
    backend: BackendOpt = "local",
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    api_key_env: ApiKeyEnvOpt = "OPENAI_API_KEY",
    config: ConfigOpt = None,
) -> None:
    """Serve the review app over the store (with --refine, also refine sent-back items).

    Example: coig-writer review serve --port 8600 --refine --backend openai
    --base-url http://127.0.0.1:8000/v1
    """
    opts = locals()
    import uvicorn

    from ..review.app import create_app

    if rereview not in ("same", "any"):
        raise fail("--rereview is same or any")
    background = None
    if refine:
        from ..review.refine import refine_loop

        worker_store = Store(db)
        pipe = _pipeline(worker_store, backend_spec(opts, concurrency=2), config)

        def background():
            return refine_loop(worker_store, pipe, refine_interval)

    app_ = create_app(db, _policy(k, specialist, rereview), secure_cookies=secure_cookies,
                      allow_ties=not no_ties, allowed_hosts=tuple(allowed_host),
                      trusted_proxies=tuple(trusted_proxy), max_body=max_body,
                      background=background)
    uvicorn.run(app_, host=host, port=port, log_level="warning", proxy_headers=False,
                ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
                ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None)


@review_app.command("export")
def review_export(out: Path, db: DbOpt = Path(DEFAULT_DB), k: KOpt = 2,
                  specialist: SpecialistOpt = SPECIALIST_DEFAULT,
                  rereview: RereviewOpt = "same") -> None:
    """Export every item's final text and full history (decisions per round, refinements,
    versions with diffs), rankings, agreement and acceptance counts as JSON.

    Example: coig-writer review export out/review.json --k 2
    """
    from ..review.service import export_decisions

    with Store(db) as store:
        data = export_decisions(store, _policy(k, specialist, rereview))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, ensure_ascii=False, indent=1, default=str), "utf-8")
    console.print(f"wrote {len(data['items'])} items and {len(data['rankings'])} rankings to {out}")


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def _print_calibration(rep: dict) -> None:
    from rich.table import Table

    r, g = rep["rules"], rep["gate"]
    ci = lambda c: f" [{c[0]:.2f}, {c[1]:.2f}]" if c else ""  # noqa: E731
    console.print(f"{rep['units']} reviewed items ({r['min_reviewers']}+ reviewers; edit counts as "
                  f"{r['edits']}; a tie counts as {'not accepted' if r['ties'] == 'reject' else 'skipped'})"
                  + "".join(f"; {n} {why.replace('_', ' ')}" for why, n in sorted(rep["skipped"].items())),
                  markup=False)
    console.print(f"gate accept vs reviewers' majority: agreement {_pct(g['agreement'])}, precision "
                  f"{_pct(g['precision'])}{ci(g['precision_ci'])}, recall {_pct(g['recall'])}"
                  f"{ci(g['recall_ci'])}, kappa {_pct(g['kappa'])} (tp {g['tp']}, fp {g['fp']}, "
                  f"fn {g['fn']}, tn {g['tn']})", markup=False)
    conf = rep["configured"]
    for kind, sec in rep["sweeps"].items():
        name = "integer scores" if kind == "argmax" else "expected scores"
        if not sec["n"]:
            console.print(f"{name}: no reviewed item has them", markup=False)
            continue
        at, b = sec["at_configured"], sec["best"]
        line = f"{name} ({sec['n']} items): "
        line += (f"the configured min_each {conf['min_each']:g}, min_sum {conf['min_sum']:g}: "
                 f"precision {_pct(at['precision'])}, recall {_pct(at['recall'])}; " if at else "")
        line += (f"precision >= {rep['target_precision']:g} with min_each {b['min_each']:g}, min_sum "
                 f"{b['min_sum']:g}: precision {_pct(b['precision'])}, recall {_pct(b['recall'])} "
                 f"({b['accepted']} accepted)" if b else
                 f"no thresholds reach precision {rep['target_precision']:g}")
        console.print(line, markup=False)
        table = Table(title=f"{name}: thresholds no other pair beats on precision and recall")
        for col in ("min_each", "min_sum", "accepted", "precision", "recall"):
            table.add_column(col, justify="right")
        for row in sec["frontier"][:15]:
            table.add_row(f"{row['min_each']:g}", f"{row['min_sum']:g}", str(row["accepted"]),
                          _pct(row["precision"]), _pct(row["recall"]))
        console.print(table)


@review_app.command("calibration")
def review_calibration(
    db: DbOpt = Path(DEFAULT_DB),
    target_precision: float = typer.Option(0.9, help="Name the thresholds whose precision "
                                                     "reaches this."),
    edits: str = typer.Option("accept", help="What an edit ('accept with my edits') counts as: "
                                             "accept or reject."),
    ties: str = typer.Option("reject", help="A tie between reviewers: reject (not accepted) or "
                                            "skip (left out)."),
    min_reviewers: int = typer.Option(2, help="Leave out items with fewer reviewer decisions."),
    config: ConfigOpt = None,
    plot: Path | None = typer.Option(None, help="Write a precision/recall plot (PNG) here."),
    as_json: JsonOpt = False,
) -> None:
    """How well the LLM gate's accept decision matches the reviewers' majority: agreement,
    precision, recall and kappa, and a sweep of min_each/min_sum over integer and expected
    scores naming the thresholds that reach --target-precision.

    Example: coig-writer review calibration --target-precision 0.9 --plot out/calibration.png
    """
    from ..construct.config import ConstructConfig
    from ..review.calibration import Rules, calibration_of_store

    if edits not in ("accept", "reject"):
        raise fail("--edits is accept or reject")
    if ties not in ("reject", "skip"):
        raise fail("--ties is reject or skip")
    if not 0 < target_precision <= 1:
        raise fail("--target-precision is a share in (0, 1]")
    if min_reviewers < 1:
        raise fail("--min-reviewers is at least 1")
    if not db.exists():
        raise fail(f"no store at {db}")
    try:
        cfg = ConstructConfig.load(config, max_rounds=None)
    except (ValueError, OSError) as e:
        raise fail(f"{config}: {e}") from None
    with Store(db) as store:
        rep = calibration_of_store(store, Rules(edits, ties, min_reviewers),  # type: ignore[arg-type]
                                   target_precision, (cfg.min_each, cfg.min_sum))
    if not rep["units"]:
        raise fail(f"no item in {db} has {min_reviewers}+ reviewer decisions to calibrate against "
                   f"(left out: {rep['skipped'] or 'nothing reviewed'})")
    if plot:
        from ..review.calibration_plot import calibration_plot

        plot.parent.mkdir(parents=True, exist_ok=True)
        calibration_plot(rep, plot)
    if as_json:
        print(json.dumps(rep, ensure_ascii=False))
        return
    _print_calibration(rep)
    if plot:
        console.print(f"plot: {plot}", markup=False)
