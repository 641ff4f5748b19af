"""A managed inference server: vLLM, SGLang or llama.cpp started as a child process, awaited on
its health endpoint, and stopped with its whole process group (on exit, Ctrl+C, SIGTERM, and
when this process is killed: the child is started with PR_SET_PDEATHSIG on Linux).

    with managed_server("vllm", "runs/CW/final") as base_url:
        ...  # an OpenAI-compatible API at base_url, model name = the alias
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx

from .base import LLMError
from .server import free_port

ENGINES = ("vllm", "sglang", "llama.cpp")
FALLBACK = ("use `--backend transformers --model DIR` (in-process, any checkpoint) or "
            "`--engine llama.cpp` with a GGUF file")


def _set_pdeathsig() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to send SIGTERM to this child when its parent dies (even by kill -9)."""
    import ctypes

    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def start_child(cmd: list[str], log: IO[str] | None = None, **kw) -> subprocess.Popen:
    """Start `cmd` in its own process group, to be stopped with `stop_child` and sent SIGTERM
    by the kernel if this process dies first (Linux)."""
    out = log if log is not None else subprocess.DEVNULL
    pre = _set_pdeathsig if sys.platform.startswith("linux") else None
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=pre, **kw)


def stop_child(proc: subprocess.Popen, grace_s: float = 30.0) -> None:
    """SIGTERM to the child's process group, then SIGKILL after `grace_s`."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def engine_command(engine: str, model: str, port: int, alias: str,
                   extra: list[str] | None = None) -> list[str]:
    """The command line that serves `model` on 127.0.0.1:`port` as `alias`; LLMError with the
    fallback when the engine is not installed or cannot serve this kind of model."""
    extra = list(extra or [])
    if engine == "vllm":
        exe = shutil.which("vllm")
        if exe is None and importlib.util.find_spec("vllm") is None:
            raise LLMError(f"vLLM is not installed here (it needs a CUDA GPU: pip install vllm); "
                           f"{FALLBACK}")
        base = [exe] if exe else [sys.executable, "-m", "vllm.entrypoints.cli.main"]
        return base + ["serve", model, "--host", "127.0.0.1", "--port", str(port),
                       "--served-model-name", alias] + extra
    if engine == "sglang":
        if importlib.util.find_spec("sglang") is None:
            raise LLMError(f"SGLang is not installed here (pip install 'sglang[all]' on a GPU "
                           f"machine); {FALLBACK}")
        return [sys.executable, "-m", "sglang.launch_server", "--model-path", model,
                "--host", "127.0.0.1", "--port", str(port), "--served-model-name", alias] + extra
    if engine == "llama.cpp":
        from .models import MODELS, ensure_model

        path = ensure_model(model) if model in MODELS else Path(model)
        if path.suffix != ".gguf" or not path.exists():
            raise LLMError(f"llama.cpp serves a .gguf file or an embedded model ({sorted(MODELS)}),"
                           f" got {model!r}; for a checkpoint folder use --engine vllm|sglang or "
                           "`--backend transformers --model DIR`")
        return [sys.executable, "-m", "coig_writer.llm.engine", "--model", str(path),
                "--alias", alias, "--port", str(port)] + extra
    raise LLMError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")


class ManagedServer:
    """One engine process; `start()` returns once its health endpoint answers."""

    def __init__(self, engine: str, model: str | Path, *, alias: str | None = None,
                 port: int | None = None, log: IO[str] | None = None, startup_s: float = 600,
                 extra_args: list[str] | None = None):
        self.engine = engine
        self.model = str(model)
        self.alias = alias or Path(self.model).name
        self.port = port or free_port()
        self.log = log
        self.startup_s = startup_s
        self.cmd = engine_command(engine, self.model, self.port, self.alias, extra_args)
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def healthy(self) -> bool:
        root = self.base_url.removesuffix("/v1")
        for url in (f"{root}/health", f"{self.base_url}/models"):
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return True
            except httpx.HTTPError:
                continue
        return False

    def start(self) -> ManagedServer:
        self.proc = start_child(self.cmd, self.log)
        deadline = time.monotonic() + self.startup_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LLMError(f"{self.engine} server exited with code {self.proc.returncode} "
                               f"before it was ready (command: {' '.join(self.cmd)})")
            if self.healthy():
                return self
            time.sleep(0.5)
        self.stop()
        raise LLMError(f"{self.engine} server did not answer within {self.startup_s:.0f} s")

    def stop(self) -> None:
        if self.proc is not None:
            stop_child(self.proc)

    def __enter__(self) -> ManagedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def managed_server(engine: str, model: str | Path, **kw) -> Iterator[str]:
    """`with managed_server("vllm", "runs/CW/final", alias="CW") as base_url: ...`"""
    with ManagedServer(engine, model, **kw) as server:
        yield server.base_url
