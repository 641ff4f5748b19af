"""Serve a GGUF model over an OpenAI-compatible HTTP API in a child process (xllamacpp)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx

from .base import LLMError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """Context manager: starts `python -m coig_writer.llm.engine` on loopback and waits until
    it answers; `base_url` is then ready for the openai backend."""

    def __init__(self, model_path: str | Path, *, alias: str = "local", port: int | None = None,
                 n_ctx: int = 8192, n_parallel: int = 2, log: IO[str] | None = None,
                 startup_s: float = 120):
        self.model_path = Path(model_path)
        self.alias = alias
        self.port = port or free_port()
        self.n_ctx = n_ctx
        self.n_parallel = n_parallel
        self.log = log
        self.startup_s = startup_s
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> LlamaServer:
        cmd = [sys.executable, "-m", "coig_writer.llm.engine", "--model", str(self.model_path),
               "--alias", self.alias, "--port", str(self.port), "--n-ctx", str(self.n_ctx),
               "--n-parallel", str(self.n_parallel), "--threads", str(os.cpu_count() or 2)]
        out = self.log or subprocess.DEVNULL
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.startup_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LLMError(f"llama.cpp server exited with {self.proc.returncode}")
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise LLMError(f"llama.cpp server did not answer within {self.startup_s:.0f} s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
