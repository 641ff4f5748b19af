"""Shared pieces of the command line: consoles, progress bars, errors, checks."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
import yaml
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from ..store import Store

if TYPE_CHECKING:
    from ..llm import BackendSpec


def _width(stream) -> int | None:
    """Terminals report their width; logs and pipes get 120 columns instead of rich's 80."""
    import os

    return None if stream.isatty() or os.environ.get("COLUMNS") else 120


console = Console(soft_wrap=True, width=_width(sys.stdout))
err = Console(stderr=True, soft_wrap=True, width=_width(sys.stderr))

class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0:.2f} items/s", style="progress.data.speed")


def progress_bar() -> Progress:
    """Progress on stderr: redrawn 4 times a second on a terminal; never redrawn by a timer
    when stderr is a file or a pipe (it is drawn once at the end there)."""
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    RateColumn(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                    console=err, transient=False, refresh_per_second=4,
                    auto_refresh=err.is_terminal)


def fail(message: str) -> typer.Exit:
    warn("error:", message, "red")
    return typer.Exit(2)


def warn(label: str, text: str, style: str = "yellow") -> None:
    """A styled label, then `text` printed literally (it may quote file or model contents)."""
    err.print(f"[{style}]{label}[/{style}] ", end="")
    err.print(text, markup=False)


def print_quarantined(entries: list, verb: str = "quarantined") -> None:
    for q in entries:
        warn(verb, f"{q.where}: {q.error}")


def import_file(db: Path, path: Path, importer, what: str) -> None:
    """Run `importer(store, path)` -> (count, quarantined rows) and report both; a path that
    is no rows file (missing, a folder, a device) exits 2 before the store is opened."""
    checked_input(path)
    with Store(db) as store:
        n, bad = importer(store, path)
    print_quarantined(bad)
    console.print(f"imported {n} {what}, quarantined {len(bad)}")


def read_store(db: Path) -> Store:
    """The store opened read-only, for commands that only read (works on a read-only file,
    folder or mount, and never changes the file); a clean exit 2 when there is none."""
    from ..store import StoreError

    try:
        return Store(db, readonly=True)
    except (StoreError, sqlite3.Error) as e:
        raise fail(f"cannot read the store {db}: {e}") from None


def writable_places(db: Path, executor: str = "local") -> None:
    """Exit 2 naming the path when the store (its file, or the folder SQLite keeps its journal
    in) or, for Ray, the shard folder cannot be written: checked before Ray or a server starts."""
    from ..executors.ray_executor import RayUnavailable, check_writable_dir

    folder = db.absolute().parent
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise fail(f"cannot create the store {db}: {existing} is not a folder")
    try:
        if db.exists():
            with db.open("r+b"):  # opening for writing fails on a read-only file or mount
                pass
        check_writable_dir(existing, "folder of the store")
        if executor == "ray":
            check_writable_dir(Path(f"{db}.shards"), "Ray shard folder")
    except OSError as e:
        raise fail(f"cannot write the store {db}: {e.strerror or e}") from None
    except RayUnavailable as e:
        raise fail(str(e)) from None


def checked_input(path: Path) -> Path:
    """`path` if it is a rows file (.jsonl .json .parquet), else a clean exit 2 naming it."""
    from ..readers import InputError, check_input

    try:
        return check_input(path)
    except InputError as e:
        raise fail(str(e)) from None


def build_or_fail(spec: BackendSpec):
    """The backend a `BackendSpec` names, or a clean exit with the reason."""
    from ..llm import LLMError, make_backend
    from ..llm.models import ModelError

    try:
        return make_backend(spec)
    except (LLMError, ModelError) as e:
        raise fail(str(e)) from None


def call_logger():
    """A CachedBackend listener printing one plain line per LLM answer to stderr: elapsed time,
    stage, item, tokens and tokens/s (readable on a terminal and in a log file alike)."""
    import time

    t0 = time.monotonic()

    def log(request, resp) -> None:
        el = time.monotonic() - t0
        stamp = f"{int(el // 60):02d}:{el % 60:04.1f}"
        if resp.cached:
            what = "cached"
        else:
            n = resp.completion_tokens
            rate = n / resp.latency_s if resp.latency_s else 0.0
            what = f"{n} tokens in {resp.latency_s:.1f}s ({rate:.1f} tok/s)"
            if resp.truncated:
                what += " TRUNCATED"
        err.print(f"[{stamp}] {request.stage or '-':<18} {request.item or '-':<24} {what}",
                  markup=False, highlight=False)

    return log


def print_stopped(stopped: str, pending: int, what: str) -> None:
    """Why a run gave up, each endpoint's last error, and what a rerun continues with."""
    if stopped:
        warn("stopped:", stopped, "red")
        warn("pending:", f"{pending} {what} left pending; rerun the same command to continue "
                         "once a server answers", "red")


def triplet_panel(trip):
    """A finished triplet for the terminal: status, prompt, reasoning (cut), scores, reasons."""
    from rich.console import Group
    from rich.panel import Panel

    def lit(text: str) -> Text:
        return Text(text)  # model output is shown literally, never as markup

    thought = trip.thought if len(trip.thought) <= 600 else trip.thought[:600] + " …"
    parts = [lit(f"prompt: {trip.query or '-'}"), lit(f"reasoning: {thought or '-'}")]
    if trip.scores:
        parts.append(lit("scores: " + ", ".join(f"{k}={v}" for k, v in
                                                trip.scores.model_dump().items())
                         + f" (sum {trip.scores.total})"))
    for r in trip.reasons:
        parts.append(lit(f"reason: {r}"))
    style = {"accepted": "green", "rejected": "red"}.get(trip.status, "yellow")
    title = f"{trip.id} [{trip.status}] {trip.genre or ''}"
    return Panel(Group(*parts), title=Text(title), border_style=style)


def check_contamination(triplets, sets: list[str] | None, exclude: bool, store=None,
                        zh_n: int = 13, en_n: int = 8):
    """Run the n-gram check on triplets (a list, or any iterable when not excluding), say what
    it found; (kept triplets, report)."""
    from ..dataset.decontaminate import DEFAULT_SETS, NgramConfig, decontaminate, triplet_items

    try:
        cfg = NgramConfig(zh_n, en_n)
    except ValueError as e:
        raise fail(str(e)) from None
    # the default sets never wait on a download; a set named on the command line may fetch
    rep = decontaminate(triplet_items(triplets), sets or DEFAULT_SETS, cfg, store,
                        download=bool(sets))
    for name, why in rep.unavailable.items():
        warn("contamination check skipped set", f"{name}: {why}")
    bad = rep.contaminated
    by_set = ", ".join(f"{k} {v}" for k, v in rep.by_set().items())
    console.print(f"contamination check: {rep.checked} triplets against "
                  f"{sum(rep.sets.values())} eval prompts ({', '.join(rep.sets) or 'no set'}); "
                  f"{len(bad)} share an n-gram" + (f" ({by_set})" if bad else "")
                  + (f", {len(bad)} excluded" if exclude and bad else "")
                  + ("" if exclude or not bad else "; --exclude-contaminated drops them") + ".")
    kept = [t for t in triplets if t.id not in bad] if exclude else triplets
    return kept, rep


def load_usefulness_config(path: Path | None, **overrides: object):
    """The `usefulness:` section of a construct config YAML (and its top-level
    `min_usefulness_gain`, a ConstructConfig field), with CLI overrides."""
    from ..construct.usefulness import UsefulnessConfig

    data: dict = {}
    if path:
        if not path.exists():
            raise fail(f"no such config file: {path}")
        whole = yaml.safe_load(path.read_text("utf-8")) or {}
        data = dict(whole.get("usefulness") or {})
        if whole.get("min_usefulness_gain") is not None:
            data.setdefault("min_usefulness_gain", whole["min_usefulness_gain"])
    data.update({k: v for k, v in overrides.items() if v is not None})
    return UsefulnessConfig.model_validate(data)
