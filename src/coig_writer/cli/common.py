"""Shared pieces of the command line: consoles, progress bars, errors, options."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
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

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

DbOpt = Annotated[Path, typer.Option("--db", help="SQLite store file.", envvar="COIG_WRITER_DB")]


class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0:.2f} items/s", style="progress.data.speed")


def progress_bar() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    RateColumn(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                    console=err, transient=False)


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
    """Run `importer(store, path)` -> (count, quarantined rows) and report both."""
    if not path.exists():
        raise fail(f"no such file: {path}")
    with Store(db) as store:
        n, bad = importer(store, path)
    print_quarantined(bad)
    console.print(f"imported {n} {what}, quarantined {len(bad)}")


def backend_or_fail(backend: str, model: str | None, base_url: str | list[str] | None,
                    api_key_env: str, concurrency: int, n_ctx: int = 8192,
                    endpoints: Path | None = None, json_schema: bool = True):
    """The backend the options name, or a clean exit with the reason."""
    from ..llm import LLMError, make_backend
    from ..llm.models import ModelError

    try:
        return make_backend(backend, model=model, base_url=base_url or None,
                            endpoints=str(endpoints) if endpoints else None,
                            api_key_env=api_key_env, concurrency=concurrency, n_ctx=n_ctx,
                            json_schema=json_schema)
    except (LLMError, ModelError) as e:
        raise fail(str(e)) from None
