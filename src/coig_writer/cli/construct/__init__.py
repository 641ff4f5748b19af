"""`construct`: corpus ingestion and refiltering (`corpus`), triplet construction on every
executor and the demo (`run`), usefulness scoring (`usefulness`) and reasoning search
(`search`)."""

import typer

construct_app = typer.Typer(help="Corpus ingestion and triplet construction.", no_args_is_help=True)

from . import audit, corpus, gate, run, search, usefulness  # noqa: E402,F401  (register their commands)

__all__ = ["construct_app"]
