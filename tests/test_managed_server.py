"""The managed server: start, health, stop and clean-up with the embedded llama.cpp engine;
vLLM and SGLang where installed (skipped otherwise, with the reason)."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from coig_writer.llm import LLMError
from coig_writer.llm.managed import ManagedServer, managed_server
from coig_writer.llm.server import free_port


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _gone(pid: int, within_s: float = 30) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.2)
    return False


def test_context_manager_starts_answers_and_stops(small_model):
    with managed_server("llama.cpp", small_model, alias="tiny-judge") as url:
        models = httpx.get(f"{url}/models", timeout=10).json()
        assert any(m["id"] == "tiny-judge" for m in models["data"])
        r = httpx.post(f"{url}/chat/completions", timeout=60, json={
            "model": "tiny-judge", "max_tokens": 4,
            "messages": [{"role": "user", "content": "Say hi"}]})
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{url}/models", timeout=2)


def test_kill_9_of_the_parent_leaves_no_engine(small_model):
    port = free_port()
    parent = subprocess.Popen(
        [sys.executable, "-m", "coig_writer.cli", "models", "serve", "--engine", "llama.cpp",
         "--model", str(small_model), "--port", str(port), "--n-ctx", "2048"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = parent.stdout.readline().strip()
        assert line == f"http://127.0.0.1:{port}/v1"
        engine = int(next(c for c in open(f"/proc/{parent.pid}/task/{parent.pid}/children")
                          .read().split()))
        assert httpx.get(f"{line}/models", timeout=5).status_code == 200
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        assert _gone(engine), "the engine outlived its killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()


def test_sigterm_stops_the_serve_command_cleanly(small_model):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "coig_writer.cli", "models", "serve", "--engine", "llama.cpp",
         "--model", str(small_model), "--port", str(port), "--n-ctx", "2048"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip().endswith(f":{port}/v1")
    engine = int(open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()[0])
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    assert "stopped" in proc.stderr.read()
    assert _gone(engine, 5)


def test_missing_engine_names_the_fallback(tmp_path):
    for engine in ("vllm", "sglang"):
        if importlib.util.find_spec(engine) is None:
            with pytest.raises(LLMError, match="--backend transformers"):
                ManagedServer(engine, tmp_path)
    with pytest.raises(LLMError, match="gguf"):
        ManagedServer("llama.cpp", tmp_path)
    run = subprocess.run([sys.executable, "-m", "coig_writer.cli", "models", "serve", "--engine",
                          "llama.cpp", "--model", str(tmp_path)], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 2 and "Traceback" not in run.stderr and "gguf" in run.stderr


@pytest.mark.skipif(importlib.util.find_spec("vllm") is None,
                    reason="vLLM is not installed (CUDA only); the llama.cpp tests cover the "
                           "process handling")
def test_vllm_serves_a_checkpoint(tmp_path):  # pragma: no cover - GPU machines only
    from coig_writer.train.tiny import build_tiny_model

    model = build_tiny_model(tmp_path / "tiny")
    with managed_server("vllm", model, alias="tiny", extra_args=["--max-model-len", "512"]) as url:
        assert httpx.get(f"{url}/models", timeout=10).status_code == 200
