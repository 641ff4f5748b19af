"""Options shared by several `construct` commands."""

from __future__ import annotations

from typing import Annotated

import typer

LayoutOpt = typer.Option(None, help="Prompt layout: shared (every call of a text begins with "
                         "the same cached prefix; the default) or legacy (templates v1).")
PromptCacheOpt = typer.Option(True, help="Keep the embedded engine's prompt cache on (off only "
                              "to measure what it saves).")

WhereOpt = Annotated[list[str] | None, typer.Option(
    help="Keep texts whose metadata meets FIELD OP VALUE (a number, true/false or a string), "
         "e.g. 'likes>=5000', 'featured==true'; repeat for several (all must hold).")]

