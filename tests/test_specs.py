"""BackendSpec and ExecutorSpec: what a command builds once and hands whole to make_backend,
the executors and Ray workers."""

import json

import pytest

from coig_writer.executors.spec import ExecutorSpec
from coig_writer.llm import BackendSpec, LLMError, make_backend
from coig_writer.llm.openai_compat import OpenAICompatBackend


def test_backend_spec_travels_as_json_and_builds_the_same_backend():
    spec = BackendSpec(kind="openai", model="m", base_url="http://127.0.0.1:9/v1", concurrency=3,
                       policy={"timeout_s": 12.0, "give_up_failures": 0})
    assert spec.base_url == ("http://127.0.0.1:9/v1",) and spec.policy.give_up_failures is None
    again = BackendSpec.model_validate(json.loads(json.dumps(spec.to_json())))
    assert again == spec
    a, b = make_backend(spec), make_backend(again)
    assert isinstance(a, OpenAICompatBackend) and a.model_id == b.model_id
    # the fields alone build the same backend: the spec never enters a cache key
    c = make_backend("openai", model="m", base_url="http://127.0.0.1:9/v1", concurrency=3)
    assert c.model_id == a.model_id


def test_make_backend_refuses_what_no_backend_takes():
    with pytest.raises(LLMError, match="--base-url"):
        make_backend(kind="openai", model="m")
    with pytest.raises(LLMError, match="unknown backend"):
        make_backend("spark")
    with pytest.raises(TypeError):
        make_backend(BackendSpec(kind="openai"), model="m")
    with pytest.raises(ValueError):
        BackendSpec(kind="openai", base_urls=["x"])  # a misspelt field is an error, not ignored


def test_executor_spec_names_its_run_record():
    assert ExecutorSpec().name == "local" and ExecutorSpec().record() == {"concurrency": 4}
    ray = ExecutorSpec(kind="ray", workers=3, address="auto")
    assert ray.record() == {"workers": 3, "shard_size": 32, "concurrency": 4, "ray_address": "auto"}
    batch = ExecutorSpec(kind="ray", batch_in="w/out.jsonl")
    assert batch.batch and batch.name == "batch" and batch.record() == {"batch_in": "w/out.jsonl"}
    with pytest.raises(ValueError):
        ExecutorSpec(kind="spark")
